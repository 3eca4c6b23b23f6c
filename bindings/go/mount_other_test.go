//go:build !linux

package lifecycle

import "errors"

func mountTmpfs(string, int) error { return errors.New("tmpfs is Linux-only") }

func unmount(string) error { return nil }
