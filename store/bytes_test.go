package store

import "testing"

// TestBytesFollowsTheKeys checks Bytes against the keys and values held
// after puts, overwrites, deletes, replicated updates and a snapshot page.
func TestBytesFollowsTheKeys(t *testing.T) {
	s := New()
	want := func(step string, n int) {
		t.Helper()
		if got := s.Bytes(); got != n {
			t.Fatalf("%s: Bytes = %d, want %d", step, got, n)
		}
	}
	want("empty", 0)
	if _, err := s.Put(1, "ab", "xyz"); err != nil {
		t.Fatal(err)
	}
	want("put", 5)
	if _, err := s.Put(1, "ab", "x"); err != nil {
		t.Fatal(err)
	}
	want("overwrite with a shorter value", 3)
	if _, err := s.Put(1, "c", "0123456789"); err != nil {
		t.Fatal(err)
	}
	want("second key", 14)
	if _, _, _, err := s.Write(1, Write{Key: "ab", Delete: true}); err != nil {
		t.Fatal(err)
	}
	want("delete", 11)
	if err := s.Apply(Update{Epoch: 1, Seq: s.Revision() + 1, Key: "d", Value: "vv"}); err != nil {
		t.Fatal(err)
	}
	want("replicated put", 14)
	s.InstallPage("", []KeyEntry{{Key: "c", Entry: Entry{Value: "1", Revision: 9}}, {Key: "e", Entry: Entry{Value: "22", Revision: 9}}}, true)
	want("snapshot page replacing every key", 5)
}
