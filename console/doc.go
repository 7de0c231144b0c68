// Package console is the operator's web console of a Homing node: a page of
// vanilla HTML, CSS and JavaScript, embedded in the binary with Go's embed
// package and served by the node's admin endpoint (issue #5, item 5). It
// needs no build step and loads nothing from the network but its own three
// files and the same origin's JSON API.
//
// The page shows, for the whole cluster and refreshed every two seconds:
// the cluster drawn as SVG (members with roles, queue mode and state, the
// partitions each backend owns, grey while not open), the total queue depth
// over the last five minutes, the cluster's queue with retry, hold, release
// and delete, the journey of one message across nodes, account lookup (the
// account, its folders with messages and unseen counts, and its messages
// newest first a page at a time, of every folder or of the one picked),
// and a queue-mode switch per member. It reads
//
//	GET  /api/v1/cluster, /api/v1/nodes, /api/v1/settings
//	GET  /api/v1/queue?scope=cluster
//	POST /api/v1/queue/{id}/retry|hold|release?node=NAME, DELETE /api/v1/queue/{id}?node=NAME
//	GET  /api/v1/journey/{id}
//	GET  /api/v1/accounts/{address}, /api/v1/accounts/{address}/folders
//	GET  /api/v1/accounts/{address}/messages?order=newest&offset=N&limit=M[&folder=F]
//	PUT  /api/v1/settings?node=NAME  {"queueMode": "..."}
//
// When the API answers 401 the page asks once for an admin token, keeps it
// in sessionStorage and sends it as "Authorization: Bearer <token>"
// (RFC 6750 §2.1); 401 and 403 are shown as such.
//
// Handler serves the files with a strong ETag and "Cache-Control: no-cache"
// (RFC 9110 §8.8.3, §13.1.2; RFC 9111 §5.2.2.4), so a browser revalidates
// and sees a new binary's console at once, and with a Content-Security-Policy
// that allows only the same origin: the page runs no inline script, and data
// from the API is only ever put into the DOM as text.
package console
