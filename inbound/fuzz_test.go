package inbound

import (
	"bytes"
	"strings"
	"testing"
)

// filterReference is the filter written the plain way, for a whole
// message shorter than maxField: the header section's lines up to the
// first blank one, grouped into fields; the fields with our id dropped.
func filterReference(msg []byte, id string) []byte {
	var out, field []byte
	flush := func() {
		name, value, ok := bytes.Cut(field, []byte(":"))
		ours := ok && strings.EqualFold(strings.TrimSpace(string(name)), "Authentication-Results") &&
			strings.EqualFold(authservID(string(value)), id)
		if !ours {
			out = append(out, field...)
		}
		field = nil
	}
	rest := msg
	for len(rest) > 0 {
		line := rest // a last line without LF is held like one
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line = rest[:i+1]
		}
		rest = rest[len(line):]
		blank := len(bytes.TrimRight(line, "\r\n")) == 0 && bytes.HasSuffix(line, []byte("\n"))
		if (line[0] == ' ' || line[0] == '\t') && !blank {
			field = append(field, line...)
			continue
		}
		flush()
		if blank {
			out = append(out, line...)
			return append(out, rest...)
		}
		field = append(field, line...)
	}
	flush()
	return out
}

// FuzzHeaderFilter feeds the forged-field filter any message in any
// pieces: it never panics and does what filterReference does.
func FuzzHeaderFilter(f *testing.F) {
	f.Add([]byte("Authentication-Results: mx.example.test; spf=pass\r\nFrom: a@b\r\n\r\nbody\r\n"), uint8(3))
	f.Add([]byte("X: y\r\n continued\r\nAuthentication-Results: (c) MX.EXAMPLE.TEST;\r\n\tdkim=pass\r\n\r\n"), uint8(1))
	f.Add([]byte("no header at all"), uint8(7))
	f.Add([]byte("\r\n\r\nAuthentication-Results: mx.example.test; x\r\n"), uint8(2))
	f.Fuzz(func(t *testing.T, msg []byte, piece uint8) {
		if len(msg) >= maxField {
			return
		}
		var out bytes.Buffer
		hf := newHeaderFilter("mx.example.test", &out)
		step := int(piece%64) + 1
		for i := 0; i < len(msg); i += step {
			hf.Write(msg[i:min(i+step, len(msg))])
		}
		hf.close()
		if want := filterReference(msg, "mx.example.test"); !bytes.Equal(out.Bytes(), want) {
			t.Fatalf("filter\n%q\n=\n%q\nwant\n%q", msg, out.Bytes(), want)
		}
	})
}
