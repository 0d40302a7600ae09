package rpc

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"btclient/session"
)

// SessionIDHeader is the header of Transmission's anti-CSRF handshake.
const SessionIDHeader = "X-Transmission-Session-Id"

// RPCPath is where the RPC is served (a trailing slash is accepted too, as
// transmission-remote sends one).
const RPCPath = "/transmission/rpc"

// Server is the RPC and the web page over one session: an http.Handler.
type Server struct {
	sess      *session.Session
	cfg       Config
	log       *slog.Logger
	sessionID string
	credHash  [32]byte
	fails     *failLimiter
	inflight  chan struct{}
	searches  chan struct{} // one token per search being served
	web       http.Handler
	started   time.Time

	mu         sync.Mutex
	removed    []removal           // torrents removed lately, for recently-active
	remembered map[int]speedLimits // per-torrent limits kept while disabled
	limits     speedLimits         // the session's, likewise
	filesAdded int
}

// speedLimits are limits in Transmission's units (kB/s, 1000 bytes), kept
// while disabled so that enabling them again restores the value.
type speedLimits struct{ upKB, downKB int64 }

type removal struct {
	id int
	at time.Time
}

// kB is Transmission's speed unit (its "speed-bytes").
const kB = 1000

// defaultLimitKB is the value a limit shows before one was ever set, as in
// Transmission.
const defaultLimitKB = 100

// New returns the server of sess.
func New(sess *session.Session, cfg Config) (*Server, error) {
	cfg.TorrentDirs = slices.Clone(cfg.TorrentDirs)
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	id := make([]byte, 36)
	if _, err := rand.Read(id); err != nil {
		return nil, fmt.Errorf("rpc: session id: %w", err)
	}
	s := &Server{
		sess:       sess,
		cfg:        cfg,
		log:        cfg.Logger,
		sessionID:  base64.RawURLEncoding.EncodeToString(id),
		credHash:   sha256.Sum256([]byte(cfg.User + "\x00" + cfg.Password)),
		fails:      newFailLimiter(cfg.AuthBurst, cfg.AuthRefill),
		inflight:   make(chan struct{}, cfg.MaxInFlight),
		searches:   make(chan struct{}, cfg.MaxSearches),
		web:        webHandler(),
		started:    time.Now(),
		remembered: map[int]speedLimits{},
		limits:     speedLimits{defaultLimitKB, defaultLimitKB},
	}
	up, down := sess.Rates()
	if up > 0 {
		s.limits.upKB = max(1, up/kB)
	}
	if down > 0 {
		s.limits.downKB = max(1, down/kB)
	}
	return s, nil
}

// SessionID is the current X-Transmission-Session-Id.
func (s *Server) SessionID() string { return s.sessionID }

// ServeHTTP checks the Host, the credentials and, for the RPC, the Origin
// and the session id, then serves the RPC or the web page.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if !s.hostAllowed(r.Host) {
		// Transmission's answer too: a page whose name was rebound to
		// this address gets nothing.
		http.Error(w, "421: Misdirected Request: unknown Host "+truncate(r.Host, 100)+
			" (allow it with --rpc-allow-host)", http.StatusMisdirectedRequest)
		return
	}
	switch s.checkAuth(r) {
	case authMissing, authWrong:
		w.Header().Set("WWW-Authenticate", `Basic realm="btclient", charset="UTF-8"`)
		http.Error(w, "401: Unauthorized", http.StatusUnauthorized)
		return
	case authLimited:
		w.Header().Set("Retry-After", fmt.Sprint(int(s.cfg.AuthRefill.Seconds()+1)))
		http.Error(w, "429: too many wrong passwords from this address; try again later", http.StatusTooManyRequests)
		return
	}
	switch {
	case r.URL.Path == RPCPath || r.URL.Path == RPCPath+"/":
		s.serveRPC(w, r)
	case r.URL.Path == "/transmission/web" || strings.HasPrefix(r.URL.Path, "/transmission/web/"):
		http.Redirect(w, r, "/", http.StatusMovedPermanently)
	default:
		s.web.ServeHTTP(w, r)
	}
}

func (s *Server) serveRPC(w http.ResponseWriter, r *http.Request) {
	if !originAllowed(r) {
		http.Error(w, "403: Forbidden: a request from another site's page", http.StatusForbidden)
		return
	}
	if r.Header.Get(SessionIDHeader) != s.sessionID {
		w.Header().Set(SessionIDHeader, s.sessionID)
		http.Error(w, "409: Conflict: send the "+SessionIDHeader+" header of this answer with every request",
			http.StatusConflict)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "405: the RPC takes POST requests", http.StatusMethodNotAllowed)
		return
	}
	select {
	case s.inflight <- struct{}{}:
		defer func() { <-s.inflight }()
	case <-r.Context().Done():
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeJSON(w, http.StatusRequestEntityTooLarge, response{Arguments: struct{}{},
				Result: fmt.Sprintf("request body too large (the limit is %d bytes)", s.cfg.MaxBody)})
			return
		}
		return // the client went away
	}
	writeJSON(w, http.StatusOK, s.handle(body))
}

// handle runs one request body and returns its response; it never panics.
func (s *Server) handle(body []byte) (resp response) {
	resp.Arguments = struct{}{}
	req, err := decodeRequest(body)
	resp.Tag = req.Tag
	if err != nil {
		resp.Result = err.Error()
		return resp
	}
	m, ok := methods[req.Method]
	if !ok {
		resp.Result = "method name not recognized"
		return resp
	}
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("rpc: method panicked", "method", req.Method, "panic", p)
			resp.Arguments, resp.Result = struct{}{}, "internal error"
		}
	}()
	out, err := m(s, req.Args)
	if err != nil {
		resp.Result = err.Error()
		return resp
	}
	if out != nil {
		resp.Arguments = out
	}
	resp.Result = "success"
	return resp
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		code = http.StatusInternalServerError
		buf.Reset()
		fmt.Fprintf(&buf, `{"arguments":{},"result":%q}`, "cannot encode the response: "+err.Error())
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	w.Write(buf.Bytes())
}
