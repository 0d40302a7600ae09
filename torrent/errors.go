package torrent

import (
	"errors"
	"fmt"
)

// Sentinel errors, matched with errors.Is. The messages returned by Parse,
// Load and Create say what exactly is wrong; these tell what kind of wrong it is.
var (
	// ErrTooLarge reports a .torrent file larger than MaxTorrentSize.
	ErrTooLarge = errors.New("torrent file too large")
	// ErrSyntax reports data that is not well-formed bencode.
	ErrSyntax = errors.New("malformed bencode")
	// ErrInvalid reports well-formed bencode that is not valid metainfo:
	// a missing or ill-typed field, or values that contradict each other.
	ErrInvalid = errors.New("invalid metainfo")
	// ErrUnsafePath reports a name or file path that could write outside the
	// download directory (absolute, "..", "." or empty components, separators).
	ErrUnsafePath = errors.New("unsafe path")
	// ErrMagnet reports a magnet link that cannot be used: no v1 info hash,
	// a malformed one, or a bad parameter.
	ErrMagnet = errors.New("malformed magnet link")
	// ErrEmpty reports that Create found no content to share.
	ErrEmpty = errors.New("nothing to share")
)

// kindError is an error whose message is specific and whose kind is one of
// the sentinel errors above.
type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

// errorf returns an error of the given kind with a formatted message.
func errorf(kind error, format string, a ...any) error {
	return &kindError{kind: kind, msg: fmt.Sprintf(format, a...)}
}
