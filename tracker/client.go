package tracker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client defaults.
const (
	DefaultTimeout          = 10 * time.Second
	DefaultMaxResponseBytes = 2 << 20
)

// ErrNoScrapeURL means an announce URL has no scrape counterpart under the
// BEP 48 rule (its last path segment does not start with "announce").
var ErrNoScrapeURL = errors.New("announce URL has no scrape URL")

// Client announces to and scrapes HTTP trackers (http://, https://) and UDP
// trackers (udp://, BEP 15), chosen by the URL's scheme. The zero value is
// ready to use; a Client is safe for concurrent use if its HTTP client is.
// It must not be copied after first use.
type Client struct {
	// HTTP sends the requests; nil means a client with no timeout of its own
	// on the default transport.
	HTTP *http.Client
	// Timeout bounds each announce or scrape: an HTTP request with its body,
	// or a UDP exchange with every retransmission; zero means DefaultTimeout.
	Timeout time.Duration
	// UserAgent is sent when set.
	UserAgent string
	// MaxResponseBytes bounds a reply body; zero means DefaultMaxResponseBytes.
	MaxResponseBytes int64
	// UDPRetry is the first wait for a UDP tracker's reply before the
	// request is sent again; zero means DefaultUDPRetry.
	UDPRetry time.Duration

	udp udpState
	// now is the clock that ages UDP connection ids; tests replace it.
	now func() time.Time
}

func (c *Client) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultTimeout
}

func (c *Client) udpRetry() time.Duration {
	if c.UDPRetry > 0 {
		return c.UDPRetry
	}
	return DefaultUDPRetry
}

func (c *Client) clock() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
}

// Announce sends req to the tracker at announceURL and returns its reply. A
// refusal from the tracker is returned as an error wrapping *FailureError.
func (c *Client) Announce(ctx context.Context, announceURL string, req AnnounceRequest) (*AnnounceResponse, error) {
	if isUDPURL(announceURL) {
		resp, err := c.announceUDP(ctx, announceURL, req)
		if err != nil {
			return nil, fmt.Errorf("announce to %s: %w", safeURL(announceURL), err)
		}
		return resp, nil
	}
	u, err := announceRequestURL(announceURL, req)
	if err != nil {
		return nil, fmt.Errorf("announce to %s: %w", safeURL(announceURL), err)
	}
	body, err := c.get(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("announce to %s: %w", safeURL(announceURL), err)
	}
	resp, err := parseAnnounceResponse(body)
	if err != nil {
		return nil, fmt.Errorf("announce to %s: %w", safeURL(announceURL), err)
	}
	return resp, nil
}

// AnnounceTiers announces to the trackers of a BEP 12 announce-list: tiers in
// order, the URLs of a tier in order, until one answers. The URL that answered
// is moved to the front of its tier (tiers is reordered in place, as BEP 12
// asks) and returned with its reply. Shuffling each tier once, when the list
// is first loaded, is the caller's part.
func (c *Client) AnnounceTiers(ctx context.Context, tiers [][]string, req AnnounceRequest) (*AnnounceResponse, string, error) {
	var errs []error
	for _, tier := range tiers {
		for i, u := range tier {
			resp, err := c.Announce(ctx, u, req)
			if err == nil {
				copy(tier[1:i+1], tier[:i])
				tier[0] = u
				return resp, u, nil
			}
			if ctx.Err() != nil {
				return nil, "", fmt.Errorf("announce: %w", ctx.Err())
			}
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		return nil, "", errors.New("announce: no tracker URLs")
	}
	return nil, "", fmt.Errorf("announce: every tracker failed: %w", errors.Join(errs...))
}

// Scrape asks the tracker behind announceURL for the counts of the given
// torrents, or, from an HTTP tracker, of all its torrents when none are given.
func (c *Client) Scrape(ctx context.Context, announceURL string, infoHashes ...[20]byte) (map[[20]byte]ScrapeStats, error) {
	if isUDPURL(announceURL) {
		stats, err := c.scrapeUDP(ctx, announceURL, infoHashes)
		if err != nil {
			return nil, fmt.Errorf("scrape %s: %w", safeURL(announceURL), err)
		}
		return stats, nil
	}
	u, err := scrapeURL(announceURL)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", safeURL(announceURL), err)
	}
	var q strings.Builder
	for _, ih := range infoHashes {
		if q.Len() > 0 {
			q.WriteByte('&')
		}
		q.WriteString("info_hash=")
		q.WriteString(escapeBytes(ih[:]))
	}
	u.RawQuery = joinQuery(u.RawQuery, q.String())
	body, err := c.get(ctx, u.String())
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", safeURL(announceURL), err)
	}
	stats, err := parseScrapeResponse(body)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", safeURL(announceURL), err)
	}
	return stats, nil
}

// get fetches u and returns its body, bounded in time and size. A non-200
// reply that carries a bencoded failure reason is returned as that failure.
func (c *Client) get(ctx context.Context, u string) ([]byte, error) {
	timeout := c.timeout()
	limit := c.MaxResponseBytes
	if limit <= 0 {
		limit = DefaultMaxResponseBytes
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	res, err := hc.Do(req)
	if err != nil {
		// A *url.Error repeats the full URL, passkey and all; keep its cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read reply: %w", err)
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("reply is larger than %d bytes", limit)
	}
	if res.StatusCode != http.StatusOK {
		if dict, err := decodeDict(body); err == nil {
			if err := failure(dict); err != nil {
				return nil, fmt.Errorf("HTTP %s: %w", res.Status, err)
			}
		}
		return nil, fmt.Errorf("HTTP %s", res.Status)
	}
	return body, nil
}

// announceRequestURL adds the announce parameters to the tracker's URL,
// keeping any query it already has (a passkey, say).
func announceRequestURL(announceURL string, req AnnounceRequest) (string, error) {
	u, err := parseTrackerURL(announceURL)
	if err != nil {
		return "", err
	}
	switch req.Event {
	case EventNone, EventStarted, EventCompleted, EventStopped:
	default:
		return "", fmt.Errorf("unknown event %q", req.Event)
	}
	var q strings.Builder
	q.WriteString("info_hash=")
	q.WriteString(escapeBytes(req.InfoHash[:]))
	q.WriteString("&peer_id=")
	q.WriteString(escapeBytes(req.PeerID[:]))
	q.WriteString("&port=")
	q.WriteString(strconv.FormatUint(uint64(req.Port), 10))
	q.WriteString("&uploaded=")
	q.WriteString(strconv.FormatInt(req.Uploaded, 10))
	q.WriteString("&downloaded=")
	q.WriteString(strconv.FormatInt(req.Downloaded, 10))
	q.WriteString("&left=")
	q.WriteString(strconv.FormatInt(req.Left, 10))
	q.WriteString("&compact=1")
	if req.Event != EventNone {
		q.WriteString("&event=")
		q.WriteString(string(req.Event))
	}
	if req.NumWant > 0 {
		q.WriteString("&numwant=")
		q.WriteString(strconv.Itoa(req.NumWant))
	}
	if req.IP != "" {
		q.WriteString("&ip=")
		q.WriteString(url.QueryEscape(req.IP))
	}
	u.RawQuery = joinQuery(u.RawQuery, q.String())
	return u.String(), nil
}

// scrapeURL derives the scrape URL by the BEP 48 rule: the last path segment
// must start with "announce", which becomes "scrape".
func scrapeURL(announceURL string) (*url.URL, error) {
	u, err := parseTrackerURL(announceURL)
	if err != nil {
		return nil, err
	}
	i := strings.LastIndexByte(u.Path, '/')
	last := u.Path[i+1:]
	if i < 0 || !strings.HasPrefix(last, "announce") {
		return nil, ErrNoScrapeURL
	}
	u.Path = u.Path[:i+1] + "scrape" + strings.TrimPrefix(last, "announce")
	u.RawPath = ""
	return u, nil
}

func parseTrackerURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("bad tracker URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("unsupported tracker URL scheme %q", u.Scheme)
	}
	if u.Host == "" {
		return nil, errors.New("tracker URL has no host")
	}
	u.Fragment, u.RawFragment = "", ""
	return u, nil
}

// joinQuery appends our parameters to a query the URL already had.
func joinQuery(existing, ours string) string {
	existing = strings.TrimRight(existing, "&")
	switch {
	case existing == "":
		return ours
	case ours == "":
		return existing
	default:
		return existing + "&" + ours
	}
}

// escapeBytes percent-encodes raw bytes, leaving only RFC 3986 unreserved
// characters as they are.
func escapeBytes(b []byte) string {
	const hex = "0123456789ABCDEF"
	var sb strings.Builder
	sb.Grow(3 * len(b))
	for _, c := range b {
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' {
			sb.WriteByte(c)
			continue
		}
		sb.WriteByte('%')
		sb.WriteByte(hex[c>>4])
		sb.WriteByte(hex[c&15])
	}
	return sb.String()
}

// safeURL is a tracker URL fit for error messages: without its query, which
// may hold a passkey.
func safeURL(s string) string {
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		return s[:i]
	}
	return s
}
