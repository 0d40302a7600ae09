package rpc

import (
	"embed"
	"io/fs"
	"net/http"
)

// webFiles is the web page: plain HTML, CSS and JavaScript, no build step.
//
//go:embed web
var webFiles embed.FS

// webHandler serves the page and its files (GET and HEAD only).
func webHandler() http.Handler {
	sub, err := fs.Sub(webFiles, "web")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "405: method not allowed", http.StatusMethodNotAllowed)
			return
		}
		// The page talks only to this server; nothing else may frame it
		// or run in it.
		w.Header().Set("Content-Security-Policy",
			"default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'")
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Referrer-Policy", "no-referrer")
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}
