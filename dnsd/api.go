package dnsd

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"time"
)

// api serves the HTTP API: records for people and scripts, and the
// replication endpoint for peers. It is unauthenticated; bind it to a
// network you trust.
type api struct {
	store          *store
	log            *slog.Logger
	changed        func() // called after a local write, to push it to peers
	defaultTTL     time.Duration
	maxTTL         time.Duration
	maxRequestBody int64
	maxGossipBody  int64
}

func newAPI(cfg Config, st *store, log *slog.Logger, changed func()) *api {
	return &api{
		store:          st,
		log:            log,
		changed:        changed,
		defaultTTL:     cfg.DefaultTTL,
		maxTTL:         cfg.MaxTTL,
		maxRequestBody: cfg.MaxRequestBody,
		maxGossipBody:  cfg.MaxGossipBody,
	}
}

// handler returns the API's routes, wrapped in panic recovery.
func (a *api) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /records", a.postRecord)
	mux.HandleFunc("GET /records", a.getRecords)
	mux.HandleFunc("DELETE /records/{name}", a.deleteRecords)
	mux.HandleFunc("POST /gossip", a.postGossip)
	mux.HandleFunc("GET /gossip", a.getGossip)
	// Patterns without a method catch the methods not served above, so a
	// wrong method gets a JSON error like everything else.
	mux.HandleFunc("/records", methodNotAllowed("GET, POST"))
	mux.HandleFunc("/records/{name}", methodNotAllowed("DELETE"))
	mux.HandleFunc("/gossip", methodNotAllowed("GET, POST"))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
	})
	return a.recoverPanics(mux)
}

func (a *api) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			if p == http.ErrAbortHandler {
				panic(p) // net/http's way to abort a response; it handles it
			}
			a.log.Error("api handler panicked", "method", r.Method, "path", r.URL.Path, "panic", p)
			writeError(w, http.StatusInternalServerError, "internal error")
		}()
		next.ServeHTTP(w, r)
	})
}

func methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed; use %s", r.Method, allow))
	}
}

// registration is the body of POST /records.
type registration struct {
	Name string `json:"name"`
	IP   string `json:"ip"`
	// TTL in seconds; 0 or absent means the default.
	TTL int64 `json:"ttl"`
}

// parseRegistration decodes and checks a POST /records body.
func (a *api) parseRegistration(body io.Reader) (name string, rec registration, ttl time.Duration, err error) {
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rec); err != nil {
		return "", rec, 0, fmt.Errorf("bad JSON: %w", err)
	}
	if dec.More() {
		return "", rec, 0, errors.New("bad JSON: more than one object in the body")
	}
	if name, err = CanonicalName(rec.Name); err != nil {
		return "", rec, 0, fmt.Errorf("bad name: %w", err)
	}
	if rec.IP == "" {
		return "", rec, 0, errors.New("missing ip")
	}
	switch maxSec := int64(a.maxTTL / time.Second); {
	case rec.TTL == 0:
		ttl = a.defaultTTL
	case rec.TTL < 0 || rec.TTL > maxSec:
		return "", rec, 0, fmt.Errorf("bad ttl %d: want 1..%d seconds", rec.TTL, maxSec)
	default:
		ttl = time.Duration(rec.TTL) * time.Second
	}
	return name, rec, ttl, nil
}

func (a *api) postRecord(w http.ResponseWriter, r *http.Request) {
	body := http.MaxBytesReader(w, r.Body, a.maxRequestBody)
	name, rec, ttl, err := a.parseRegistration(body)
	if err != nil {
		writeBodyError(w, err)
		return
	}
	ip, err := parseRecordIP(rec.IP)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	stored, err := a.store.put(name, ip, ttl)
	if err != nil {
		writeError(w, http.StatusInsufficientStorage, err.Error())
		return
	}
	a.changed()
	writeJSON(w, http.StatusCreated, stored)
}

func (a *api) getRecords(w http.ResponseWriter, r *http.Request) {
	name := ""
	if q := r.URL.Query().Get("name"); q != "" {
		var err error
		if name, err = CanonicalName(q); err != nil {
			writeError(w, http.StatusBadRequest, "bad name: "+err.Error())
			return
		}
	}
	recs := a.store.list(name)
	if recs == nil {
		recs = []Record{}
	}
	writeJSON(w, http.StatusOK, recs)
}

func (a *api) deleteRecords(w http.ResponseWriter, r *http.Request) {
	name, err := CanonicalName(r.PathValue("name"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad name: "+err.Error())
		return
	}
	var ip netip.Addr // the zero Addr deletes every address of the name
	if s := r.URL.Query().Get("ip"); s != "" {
		if ip, err = parseRecordIP(s); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	n := a.store.remove(name, ip)
	a.changed()
	writeJSON(w, http.StatusOK, map[string]int{"deleted": n})
}

// gossipMessage is what peers exchange: every record and tombstone the
// sender holds.
type gossipMessage struct {
	Records []Record `json:"records"`
}

// postGossip merges a peer's records and answers with ours (push-pull).
func (a *api) postGossip(w http.ResponseWriter, r *http.Request) {
	var msg gossipMessage
	body := http.MaxBytesReader(w, r.Body, a.maxGossipBody)
	if err := json.NewDecoder(body).Decode(&msg); err != nil {
		writeBodyError(w, fmt.Errorf("bad JSON: %w", err))
		return
	}
	if a.store.merge(msg.Records) > 0 {
		a.changed() // pass news on to our own peers
	}
	writeJSON(w, http.StatusOK, gossipMessage{Records: a.store.snapshot()})
}

func (a *api) getGossip(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, gossipMessage{Records: a.store.snapshot()})
}

// writeBodyError answers a request whose body could not be used with 400,
// saying so plainly when the body was too large.
func writeBodyError(w http.ResponseWriter, err error) {
	if tooBig, ok := errors.AsType[*http.MaxBytesError](err); ok {
		err = fmt.Errorf("body larger than %d bytes", tooBig.Limit)
	}
	writeError(w, http.StatusBadRequest, err.Error())
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
