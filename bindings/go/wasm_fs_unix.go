//go:build (!cgo || nl_wasm) && (linux || darwin || freebsd)

package lifecycle

import "golang.org/x/sys/unix"

// diskIsFull says whether the file system holding dir has no free blocks or inodes left.
func diskIsFull(dir string) bool {
	var st unix.Statfs_t
	return unix.Statfs(dir, &st) == nil && (st.Bfree == 0 || st.Bavail == 0 || st.Ffree == 0)
}
