package store

import (
	"fmt"
	"slices"
	"testing"
)

// listKeys returns the keys of one List page.
func listKeys(s *Store, prefix, after string, limit int) (keys []string, more bool) {
	page, _, _, more := s.List(prefix, after, limit, 1<<20)
	for _, e := range page {
		keys = append(keys, e.Key)
	}
	return keys, more
}

func TestListPagesAPrefix(t *testing.T) {
	s := New()
	for _, k := range []string{"a", "a/", "a/1", "a/2", "a/3", "a0", "a/2/x", "b/1", "ab"} {
		if _, err := s.Put(1, k, "v-"+k); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name, prefix, after string
		limit               int
		want                []string
		more                bool
	}{
		{"empty prefix is everything", "", "", 100, []string{"a", "a/", "a/1", "a/2", "a/2/x", "a/3", "a0", "ab", "b/1"}, false},
		{"prefix", "a/", "", 100, []string{"a/", "a/1", "a/2", "a/2/x", "a/3"}, false},
		{"first page", "a/", "", 2, []string{"a/", "a/1"}, true},
		{"cursor mid-prefix", "a/", "a/1", 2, []string{"a/2", "a/2/x"}, true},
		{"cursor shares a prefix with later keys", "a/", "a/2", 100, []string{"a/2/x", "a/3"}, false},
		{"last page exactly full", "a/", "a/2", 2, []string{"a/2/x", "a/3"}, false},
		{"cursor at the last key", "a/", "a/3", 100, nil, false},
		{"cursor of a deleted key", "a/", "a/25", 100, []string{"a/3"}, false},
		{"no keys under the prefix", "c/", "", 100, nil, false},
		{"prefix past every key", "z", "", 100, nil, false},
		{"whole key as prefix", "a/2", "", 100, []string{"a/2", "a/2/x"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, more := listKeys(s, tc.prefix, tc.after, tc.limit)
			if !slices.Equal(got, tc.want) || more != tc.more {
				t.Fatalf("List(%q, %q, %d) = %q more=%v, want %q more=%v", tc.prefix, tc.after, tc.limit, got, more, tc.want, tc.more)
			}
		})
	}
}

func TestListForgetsDeletedKeysAndCutsBytes(t *testing.T) {
	s := New()
	for i := range 10 {
		if _, err := s.Put(1, fmt.Sprintf("k/%02d", i), "0123456789"); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, applied, err := s.Write(1, Write{Key: "k/03", Delete: true}); err != nil || !applied {
		t.Fatalf("delete: applied=%v err=%v", applied, err)
	}
	got, more := listKeys(s, "k/", "k/01", 3)
	if want := []string{"k/02", "k/04", "k/05"}; !slices.Equal(got, want) || !more {
		t.Fatalf("after a delete: %q more=%v, want %q more=true", got, more, want)
	}
	// Each entry is 4+10 bytes: a 30-byte bound holds two.
	page, rev, _, more := s.List("k/", "", 100, 30)
	if len(page) != 2 || !more || rev != 11 {
		t.Fatalf("byte bound: %d entries more=%v rev=%d, want 2 true 11", len(page), more, rev)
	}
	// One entry over the bound is still returned, so paging moves on.
	if page, _, _, _ := s.List("k/", "", 100, 1); len(page) != 1 {
		t.Fatalf("tiny byte bound: %d entries, want 1", len(page))
	}
}
