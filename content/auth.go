package content

// SetAuthServID names the cluster's authserv-id (RFC 8601): the rules'
// auth.spf, auth.dkim and auth.dmarc conditions read the results of the
// Authentication-Results field with this id, which only the cluster
// writes (its MX removes others with it).
func (p *Pipeline) SetAuthServID(id string) { p.authServID.Store(id) }

// AuthServID is the authserv-id the rules trust ("" until set).
func (p *Pipeline) AuthServID() string {
	id, _ := p.authServID.Load().(string)
	return id
}
