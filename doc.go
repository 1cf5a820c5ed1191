// Package svcgate holds the vocabulary of svcgate, the agent that lets an
// operator list, watch and control a host's services over an authenticated
// HTTP API: services and their states, the actions that change them, the
// Backend contract every service manager implements, events, principals and
// the one error type whose codes the HTTP layer maps to statuses.
//
// It imports nothing but the standard library, so every other package can
// speak in these types without depending on each other.
package svcgate
