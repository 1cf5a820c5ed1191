// Package httpapi is svcgate's REST API: the route table (routes.go), its
// handlers and middleware, problem+json errors, the Server-Sent Events
// stream, the OpenAPI document, and a Go client for all of it.
//
// NewHandler takes every dependency in Options and returns the API as one
// http.Handler; NewServer wraps it in an http.Server with timeouts and
// limits. Every route names the permission it needs in the route table, and
// one middleware authenticates, validates service names and authorizes
// before any handler runs. Errors are RFC 9457 problems whose code (one of
// package svcgate's) maps to a status through one table, StatusOf, which
// the Client reads backwards (CodeOf).
package httpapi
