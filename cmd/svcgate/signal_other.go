//go:build !unix

package main

import "context"

// onReloadSignal does nothing where there is no SIGHUP; on Windows the
// service handler's ParamChange reloads instead.
func onReloadSignal(context.Context, func()) {}
