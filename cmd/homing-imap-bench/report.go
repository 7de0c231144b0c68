package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

type report struct {
	Machine string
	Cfg     config
	Sizes   []*sizeReport
}

type sizeReport struct {
	N                  int
	HomingFill         time.Duration
	HomingFillSessions int
	DovecotWrite       time.Duration
	DovecotFirstSelect time.Duration
	Ops                []*opResult
	Concurrent         *concResult
}

// opResult holds each round's time of one operation per product.
type opResult struct {
	Op     string
	Rounds map[string][]time.Duration
}

func (r *opResult) add(product string, d time.Duration) {
	if r.Rounds == nil {
		r.Rounds = map[string][]time.Duration{}
	}
	r.Rounds[product] = append(r.Rounds[product], d)
}

func (r *opResult) median(product string) time.Duration { return median(r.Rounds[product]) }

// concResult holds each round's loops per second per product.
type concResult struct {
	Sessions, Loops int
	Rounds          map[string][]float64
	Failures        map[string][]string
}

func (r *concResult) failed(product string, err error) {
	if r.Failures == nil {
		r.Failures = map[string][]string{}
	}
	r.Failures[product] = append(r.Failures[product], err.Error())
}

// cell is the median loops/s, or how many rounds failed.
func (r *concResult) cell(product string) string {
	s := ""
	if v := r.Rounds[product]; len(v) > 0 {
		s = fmt.Sprintf("%.2f", median(v))
	}
	if f := len(r.Failures[product]); f > 0 {
		s = strings.TrimSpace(s + fmt.Sprintf(" (%d of %d rounds failed)", f, f+len(r.Rounds[product])))
	}
	return s
}

func (r *concResult) add(product string, perSecond float64) {
	if r.Rounds == nil {
		r.Rounds = map[string][]float64{}
	}
	r.Rounds[product] = append(r.Rounds[product], perSecond)
}

// median of the values (the mean of the middle two for an even count).
func median[T time.Duration | float64](v []T) T {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ms(d time.Duration) string {
	switch {
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	case d < time.Second:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
}

func (rep *report) write(w io.Writer) {
	fmt.Fprintf(w, "\nhoming-imap-bench: %s\n", rep.Machine)
	fmt.Fprintf(w, "medians of %d rounds (the concurrent loop: of %d rounds); Homing/Dovecot > 1 means Homing takes longer\n\n", rep.Cfg.Rounds, rep.Cfg.ConcRounds)
	fmt.Fprintln(w, "| messages | operation | Homing | Dovecot | Homing/Dovecot |")
	fmt.Fprintln(w, "| ---: | --- | ---: | ---: | ---: |")
	for _, s := range rep.Sizes {
		for _, o := range s.Ops {
			h, d := o.median("Homing"), o.median("Dovecot")
			fmt.Fprintf(w, "| %d | %s | %s | %s | %.2f |\n", s.N, o.Op, ms(h), ms(d), float64(h)/float64(d))
		}
		c := s.Concurrent
		if c == nil {
			continue
		}
		h, d := median(c.Rounds["Homing"]), median(c.Rounds["Dovecot"])
		ratio := "-"
		if h > 0 && d > 0 {
			ratio = fmt.Sprintf("%.2f (throughput)", h/d)
		}
		fmt.Fprintf(w, "| %d | %d sessions x %d loops (SELECT, UID FETCH FLAGS, FETCH ENVELOPE, %d bodies), loops/s | %s | %s | %s |\n",
			s.N, c.Sessions, c.Loops, bodies, c.cell("Homing"), c.cell("Dovecot"), ratio)
	}
	fmt.Fprintln(w)
	for _, s := range rep.Sizes {
		fill := "Homing's data directory filled in an earlier run (--homing-data)"
		if s.HomingFill > 0 {
			fill = fmt.Sprintf("Homing filled by APPEND over %d sessions in %v (%.0f/s)", s.HomingFillSessions, s.HomingFill.Round(time.Millisecond), float64(s.N)/s.HomingFill.Seconds())
		}
		fmt.Fprintf(w, "%d messages: %s; Dovecot's Maildir written in %v, its first SELECT (building the index) %s\n",
			s.N, fill, s.DovecotWrite.Round(time.Millisecond), ms(s.DovecotFirstSelect))
		for _, o := range s.Ops {
			fmt.Fprintf(w, "  %-32s Homing %v  Dovecot %v\n", o.Op, rounds(o.Rounds["Homing"]), rounds(o.Rounds["Dovecot"]))
		}
		if c := s.Concurrent; c != nil {
			fmt.Fprintf(w, "  %-32s Homing %.2f  Dovecot %.2f loops/s\n", "concurrent loop", c.Rounds["Homing"], c.Rounds["Dovecot"])
			for p, fs := range c.Failures {
				for _, f := range fs {
					fmt.Fprintf(w, "  %s failed a round: %s\n", p, f)
				}
			}
		}
	}
}

func rounds(v []time.Duration) string {
	var s []string
	for _, d := range v {
		s = append(s, ms(d))
	}
	return "[" + strings.Join(s, ", ") + "]"
}

// thisMachine names the CPU model, the CPUs and Go.
func thisMachine() string {
	cpu := "unknown CPU"
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.Join(strings.Fields(v), " ")
				break
			}
		}
	}
	return fmt.Sprintf("%d CPUs, %s, %s %s/%s", runtime.NumCPU(), cpu, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
