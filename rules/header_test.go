package rules

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestParseHeader(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		want    Header
		wantErr error
	}{
		{
			name: "CRLF fields and body",
			raw:  "From: a@example.org\r\nSubject: Hello\r\n\r\nBody: not a field\r\n",
			want: Header{{"From", "a@example.org"}, {"Subject", "Hello"}},
		},
		{
			name: "bare LF line ends",
			raw:  "From: a@example.org\nSubject: Hello\n\nbody\n",
			want: Header{{"From", "a@example.org"}, {"Subject", "Hello"}},
		},
		{
			name: "folding with space and tab (RFC 5322 §2.2.3)",
			raw:  "Subject: one\r\n two\r\n\tthree\r\nTo: b@example.org\r\n\r\n",
			want: Header{{"Subject", "one two\tthree"}, {"To", "b@example.org"}},
		},
		{
			name: "folded first line empty",
			raw:  "Received:\r\n from x\r\n by y\r\n\r\n",
			want: Header{{"Received", "from x by y"}},
		},
		{
			name: "no empty line: all of it is header",
			raw:  "Subject: only a header\r\nX-A: b",
			want: Header{{"Subject", "only a header"}, {"X-A", "b"}},
		},
		{
			name: "white space before the colon (obsolete syntax)",
			raw:  "Subject \t: spaced\r\n\r\n",
			want: Header{{"Subject", "spaced"}},
		},
		{
			name: "empty value and surrounding white space",
			raw:  "X-Empty:\r\nX-Pad:   padded  \t\r\n\r\n",
			want: Header{{"X-Empty", ""}, {"X-Pad", "padded"}},
		},
		{
			name: "colon in the value",
			raw:  "Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\n",
			want: Header{{"Date", "Mon, 1 Jan 2024 10:00:00 +0000"}},
		},
		{
			name: "stray CR and NUL become spaces",
			raw:  "Subject: a\rb\x00c\r\r\n\r\n",
			want: Header{{"Subject", "a b c"}},
		},
		{
			name: "mbox From line skipped",
			raw:  "From a@example.org Mon Jan  1 10:00:00 2024\nSubject: x\n\n",
			want: Header{{"Subject", "x"}},
		},
		{
			name: "empty input",
			raw:  "",
			want: nil,
		},
		{
			name: "empty header section",
			raw:  "\r\nSubject: in the body\r\n",
			want: nil,
		},
		{
			name:    "a line that is not a field ends the header",
			raw:     "Subject: x\r\nthis is the body without an empty line\r\nX-Late: no\r\n",
			want:    Header{{"Subject", "x"}},
			wantErr: ErrMalformedHeader,
		},
		{
			name:    "name with a space is not a field",
			raw:     "To: a@example.org\r\nBad Name: x\r\n\r\n",
			want:    Header{{"To", "a@example.org"}},
			wantErr: ErrMalformedHeader,
		},
		{
			name:    "colon first is not a field",
			raw:     ":x\r\nSubject: y\r\n",
			want:    nil,
			wantErr: ErrMalformedHeader,
		},
		{
			name:    "non-ASCII name is not a field",
			raw:     "Sübject: y\r\n",
			want:    nil,
			wantErr: ErrMalformedHeader,
		},
		{
			name:    "continuation before the first field is skipped",
			raw:     " orphan\r\nSubject: y\r\n\r\n",
			want:    Header{{"Subject", "y"}},
			wantErr: ErrMalformedHeader,
		},
		{
			name: "repeated fields keep their order",
			raw:  "Received: one\r\nReceived: two\r\nreceived: three\r\n\r\n",
			want: Header{{"Received", "one"}, {"Received", "two"}, {"received", "three"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseHeader([]byte(tt.raw))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("header = %q, want %q", got, tt.want)
			}
			if tt.wantErr == nil && err != nil {
				t.Errorf("err = %v, want nil", err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestParseHeaderTooManyFields(t *testing.T) {
	var b strings.Builder
	for i := 0; i < MaxHeaderFields+5; i++ {
		fmt.Fprintf(&b, "X-N: %d\r\n", i)
	}
	b.WriteString("\r\nbody")
	h, err := ParseHeader([]byte(b.String()))
	if !errors.Is(err, ErrHeaderTooLarge) {
		t.Fatalf("err = %v, want ErrHeaderTooLarge", err)
	}
	if len(h) != MaxHeaderFields {
		t.Fatalf("kept %d fields, want %d", len(h), MaxHeaderFields)
	}
	if h[len(h)-1].Value != fmt.Sprint(MaxHeaderFields-1) {
		t.Errorf("last field = %q", h[len(h)-1])
	}
}

func TestParseHeaderTooManyBytes(t *testing.T) {
	long := strings.Repeat("x", MaxHeaderBytes)
	raw := "Subject: first\r\nX-Long: " + long + "\r\n\r\n"
	h, err := ParseHeader([]byte(raw))
	if !errors.Is(err, ErrHeaderTooLarge) {
		t.Fatalf("err = %v, want ErrHeaderTooLarge", err)
	}
	want := Header{{"Subject", "first"}}
	if !reflect.DeepEqual(h, want) {
		t.Errorf("header = %.80q, want %q (the cut field dropped)", h, want)
	}

	// A header just under the limit is read whole.
	fits := "X-Long: " + strings.Repeat("y", MaxHeaderBytes-20) + "\r\n\r\nbody"
	h, err = ParseHeader([]byte(fits))
	if err != nil || len(h) != 1 || len(h[0].Value) != MaxHeaderBytes-20 {
		t.Errorf("under the limit: %d fields, err %v", len(h), err)
	}
}

func TestHeaderLookups(t *testing.T) {
	h := Header{{"Received", "one"}, {"Subject", "s"}, {"received", "two"}}
	if got := h.Get("RECEIVED"); got != "one" {
		t.Errorf("Get = %q, want the first value", got)
	}
	if got := h.Values("received"); !reflect.DeepEqual(got, []string{"one", "two"}) {
		t.Errorf("Values = %q", got)
	}
	if h.Get("X-None") != "" || h.Values("X-None") != nil || h.Has("X-None") {
		t.Error("an absent field has a value")
	}
	if !h.Has("subject") {
		t.Error("Has(subject) = false")
	}
	var zero Header
	if zero.Get("a") != "" || zero.Has("a") {
		t.Error("the zero Header is not empty")
	}
}
