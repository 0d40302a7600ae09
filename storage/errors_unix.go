package storage

import (
	"errors"
	"syscall"
)

func isReadOnlyFS(err error) bool { return errors.Is(err, syscall.EROFS) }

func isBadFD(err error) bool { return errors.Is(err, syscall.EBADF) }
