package lifecycle

// SetSharedForTests lets the external tests (acceptance_test.go) turn every fleet New opens
// into a shared one.
func SetSharedForTests(f func(*Options)) { sharedForTests = f }
