package filter

import (
	"errors"
	"os"
	"testing"
)

func TestWriteMessageFile(t *testing.T) {
	dir := t.TempDir()
	body := "Subject: hi\r\n\r\nbody\r\n"
	path, err := WriteMessageFile(dir, "a@example.net", []string{"b@example.test", "c@example.test"}, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := "Return-Path: <a@example.net>\r\nEnvelope-To: <b@example.test>\r\nEnvelope-To: <c@example.test>\r\n" + body
	if string(got) != want {
		t.Fatalf("file:\n%q\nwant\n%q", got, want)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", st.Mode().Perm())
	}
}

func TestWriteMessageFileNullSender(t *testing.T) {
	path, err := WriteMessageFile(t.TempDir(), "", []string{"b@example.test"}, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if string(got) != "Return-Path: <>\r\nEnvelope-To: <b@example.test>\r\nx" {
		t.Fatalf("file %q", got)
	}
}

func TestWriteMessageFileRefusesBadEnvelope(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		from  string
		rcpts []string
	}{
		{"a@example.net", nil},
		{"a@example.net", []string{""}},
		{"a@example.net\r\nEnvelope-To: <evil@example.net>", []string{"b@example.test"}},
		{"a@example.net", []string{"b@example.test>\r\nX: y"}},
		{"a@example.net", []string{"b@example.test", "c\n@example.test"}},
		{"<a@example.net>", []string{"b@example.test"}},
		{"a\x00@example.net", []string{"b@example.test"}},
	}
	for _, c := range cases {
		if _, err := WriteMessageFile(dir, c.from, c.rcpts, []byte("x")); !errors.Is(err, ErrInvalidEnvelope) {
			t.Errorf("WriteMessageFile(%q, %q): %v, want ErrInvalidEnvelope", c.from, c.rcpts, err)
		}
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("files left behind: %v", left)
	}
	if _, err := WriteMessageFile(dir+"/missing", "a@example.net", []string{"b@example.test"}, nil); err == nil {
		t.Fatal("writing into a missing directory succeeded")
	}
}
