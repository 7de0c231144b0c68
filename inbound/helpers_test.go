package inbound

import (
	"encoding/hex"
	"os"
)

func writeFile(name string, b []byte) error { return os.WriteFile(name, b, 0o600) }

func hexOf(b []byte) string { return hex.EncodeToString(b) }
