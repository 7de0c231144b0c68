package dnstest

import "fmt"

// PythonResolver is Python code that points dnspython's default resolver
// (which pyspf and dkimpy use) at the server, never at the system's:
// prepend it to a script run by Debian's /usr/bin/python3.
func (s *Server) PythonResolver() string {
	return fmt.Sprintf(`import dns.resolver
_r = dns.resolver.Resolver(configure=False)
_r.nameservers = ["127.0.0.1"]
_r.port = %d
_r.timeout = 2
_r.lifetime = 4
dns.resolver.default_resolver = _r
def dnstest_txt(name, timeout=5):
    """dkimpy's dnsfunc: the TXT record of name from the test server."""
    if isinstance(name, bytes):
        name = name.decode()
    try:
        ans = _r.resolve(name.rstrip("."), "TXT")
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return None
    return b"".join(b"".join(r.strings) for r in ans)
`, s.Port())
}
