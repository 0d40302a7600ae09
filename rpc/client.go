package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// ErrUnauthorized is the error of a call the server refused for its
// credentials (none, or wrong ones).
var ErrUnauthorized = errors.New("rpc: unauthorized (wrong or missing user:password)")

// Client calls a Transmission RPC server (btclient's or Transmission's):
// it does the session-id handshake and Basic auth.
type Client struct {
	url        string
	user, pass string
	http       *http.Client

	mu        sync.Mutex
	sessionID string
}

// maxResponse bounds a response body.
const maxResponse = 64 << 20

// NewClient returns a client of the RPC at url; auth is "user:password" or
// "" for none.
func NewClient(url, auth string) *Client {
	c := &Client{url: url, http: &http.Client{Timeout: 30 * time.Second}}
	if auth != "" {
		c.user, c.pass, _ = strings.Cut(auth, ":")
	}
	return c
}

// Error is a result other than "success".
type Error struct{ Result string }

func (e *Error) Error() string { return "rpc: " + e.Result }

// Call runs method with args (nil: none) and decodes the response's
// arguments into out (nil: ignored).
func (c *Client) Call(ctx context.Context, method string, args, out any) error {
	req := map[string]any{"method": method}
	if args != nil {
		req["arguments"] = args
	}
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("rpc: %s: %w", method, err)
	}
	for range 2 {
		resp, err := c.post(ctx, body)
		if err != nil {
			return fmt.Errorf("rpc: %s: %w", method, err)
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("rpc: %s: %w", method, err)
		}
		switch resp.StatusCode {
		case http.StatusConflict:
			c.mu.Lock()
			c.sessionID = resp.Header.Get(SessionIDHeader)
			c.mu.Unlock()
			continue
		case http.StatusUnauthorized:
			return ErrUnauthorized
		}
		var r struct {
			Arguments json.RawMessage `json:"arguments"`
			Result    string          `json:"result"`
		}
		if err := json.Unmarshal(data, &r); err != nil {
			return fmt.Errorf("rpc: %s: HTTP %s: %s", method, resp.Status, truncate(strings.TrimSpace(string(data)), 200))
		}
		if r.Result != "success" {
			return &Error{Result: r.Result}
		}
		if out != nil && len(r.Arguments) > 0 {
			if err := json.Unmarshal(r.Arguments, out); err != nil {
				return fmt.Errorf("rpc: %s: decode the response: %w", method, err)
			}
		}
		return nil
	}
	return fmt.Errorf("rpc: %s: the server kept refusing the session id", method)
}

func (c *Client) post(ctx context.Context, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	c.mu.Lock()
	if c.sessionID != "" {
		req.Header.Set(SessionIDHeader, c.sessionID)
	}
	c.mu.Unlock()
	if c.user != "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	return c.http.Do(req)
}
