package control

import (
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/homing-mail/homing/admin"
	"github.com/homing-mail/homing/storage"
)

// The free-space guard of each store (storage.Space) as the admin API
// shows it: a readiness check, the node's stores in its info, gauges.

// stores returns one entry per store.
func (a *API) stores() []admin.StoreSpace {
	if a.Spaces == nil {
		return nil
	}
	var out []admin.StoreSpace
	for _, st := range a.Spaces() {
		for _, name := range st.Stores {
			out = append(out, admin.StoreSpace{Store: name, Dir: st.Dir, FreeBytes: st.Free, TotalBytes: st.Total,
				MinFreeBytes: st.MinFree, FloorBytes: st.Floor, Low: st.Low, Short: st.Short,
				ReserveBytes: st.Reserve, ReserveHeld: st.ReserveHeld, Error: st.Err})
		}
	}
	return out
}

// spaceCheck is the readiness check "storage": every store's filesystem
// has at least its free-space limit. Below it the node refuses new mail
// (452 4.3.1) and defers Local Delivery; a load balancer should send mail
// elsewhere, and the detail says where space is short.
func (a *API) spaceCheck() admin.Check {
	stores := a.stores()
	var low, ok []string
	for _, s := range stores {
		switch {
		case s.Error != "":
			ok = append(ok, fmt.Sprintf("%s: free space unknown (%s)", s.Store, s.Error))
		case s.Low:
			low = append(low, fmt.Sprintf("%s store: %s free on the filesystem of %s, below the %s limit (--min-free-space)",
				s.Store, storage.FormatBytes(s.FreeBytes), s.Dir, storage.FormatBytes(s.MinFreeBytes)))
		default:
			ok = append(ok, fmt.Sprintf("%s: %s free (limit %s)", s.Store, storage.FormatBytes(s.FreeBytes), storage.FormatBytes(s.MinFreeBytes)))
		}
	}
	if len(low) > 0 {
		return admin.Check{Name: "storage", Detail: strings.Join(low, "; ") +
			": new mail is refused with 452 4.3.1 and Local Delivery waits; free space there (delete messages, or other files)"}
	}
	if len(ok) == 0 {
		return admin.Check{Name: "storage", OK: true, Detail: "no free-space guard"}
	}
	return admin.Check{Name: "storage", OK: true, Detail: strings.Join(ok, "; ")}
}

// registerSpaceMetrics adds the gauges of each store's free space: from
// the start, one series per store.
func (a *API) registerSpaceMetrics(reg prometheus.Registerer) {
	for _, s := range a.stores() {
		store := s.Store
		labels := prometheus.Labels{"store": store}
		get := func(f func(admin.StoreSpace) float64) func() float64 {
			return func() float64 {
				for _, s := range a.stores() {
					if s.Store == store {
						return f(s)
					}
				}
				return 0
			}
		}
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "homing_store_free_bytes", ConstLabels: labels,
			Help: "Bytes free for the store on its filesystem (statfs f_bavail); stores on one filesystem show the same.",
		}, get(func(s admin.StoreSpace) float64 { return float64(s.FreeBytes) })))
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "homing_store_min_free_bytes", ConstLabels: labels,
			Help: "The free-space limit of the store (--min-free-space, or what the stores need for their own writes when more): below it new mail is refused with 452 4.3.1.",
		}, get(func(s admin.StoreSpace) float64 { return float64(s.MinFreeBytes) })))
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "homing_store_space_low", ConstLabels: labels,
			Help: "1 while the store's free space is below its limit (new mail refused, Local Delivery deferred), else 0.",
		}, get(func(s admin.StoreSpace) float64 {
			if s.Low {
				return 1
			}
			return 0
		})))
	}
}
