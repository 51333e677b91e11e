package web

import (
	"net/netip"
	"slices"
	"sync"
	"time"
)

// loginLimiter counts login attempts per key (an account and address pair,
// an address, an account) in a sliding window. An attempt is reserved
// against every key it falls under before the password is hashed, all at
// once under one lock, so that parallel attempts cannot pass the limit; a
// good password forgets its reservation. The number of keys is bounded:
// when full, expired keys go first, then the least recently used.
type loginLimiter struct {
	mu      sync.Mutex
	window  time.Duration
	maxKeys int
	hits    map[string][]time.Time
	// known remembers, per account, the addresses that signed in with the
	// right password lately: they are spared the account-wide ceiling.
	known map[string]time.Time
	now   func() time.Time
}

// limit is one key and how many attempts it may make per window.
type limit struct {
	key string
	max int
}

func newLoginLimiter(window time.Duration, maxKeys int) *loginLimiter {
	return &loginLimiter{window: window, maxKeys: maxKeys, hits: map[string][]time.Time{}, known: map[string]time.Time{}, now: time.Now}
}

// reservation is an attempt counted against its keys.
type reservation struct {
	l    *loginLimiter
	keys []string
	at   time.Time
}

// reserve counts an attempt against every limit if all of them have room;
// otherwise it counts nothing and says how long to wait.
func (l *loginLimiter) reserve(limits ...limit) (*reservation, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	var wait time.Duration
	for _, lim := range limits {
		hs := l.prune(lim.key, now)
		if len(hs) >= lim.max {
			wait = max(wait, hs[len(hs)-lim.max].Add(l.window).Sub(now))
		}
	}
	if wait > 0 {
		return nil, wait
	}
	if len(l.hits)+len(limits) > l.maxKeys {
		l.evict(now, len(limits))
	}
	r := &reservation{l: l, at: now}
	for _, lim := range limits {
		l.hits[lim.key] = append(l.hits[lim.key], now)
		r.keys = append(r.keys, lim.key)
	}
	return r, 0
}

// forget takes the attempt back (a good password, or an attempt that was
// never checked) and clears the keys in clear.
func (r *reservation) forget(clear ...string) {
	l := r.l
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range r.keys {
		hs := l.hits[k]
		if i := slices.Index(hs, r.at); i >= 0 {
			hs = slices.Delete(hs, i, i+1)
		}
		if len(hs) == 0 || slices.Contains(clear, k) {
			delete(l.hits, k)
		} else {
			l.hits[k] = hs
		}
	}
}

// remember marks a key (account and address) as known good.
func (l *loginLimiter) remember(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if _, ok := l.known[key]; !ok && len(l.known) >= l.maxKeys {
		for k, at := range l.known {
			if now.Sub(at) > knownFor || len(l.known) >= l.maxKeys {
				delete(l.known, k)
			}
		}
	}
	l.known[key] = now
}

// isKnown reports whether key signed in lately.
func (l *loginLimiter) isKnown(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	at, ok := l.known[key]
	return ok && l.now().Sub(at) <= knownFor
}

// knownFor is how long a good sign-in spares an address the account-wide ceiling.
const knownFor = 30 * 24 * time.Hour

func (l *loginLimiter) prune(k string, now time.Time) []time.Time {
	hs := l.hits[k]
	i := 0
	for i < len(hs) && now.Sub(hs[i]) >= l.window {
		i++
	}
	hs = hs[i:]
	if len(hs) == 0 {
		delete(l.hits, k)
		return nil
	}
	l.hits[k] = hs
	return hs
}

// evict makes room for n keys: expired keys first, then the keys whose
// newest attempt is oldest, down to 90% of the bound.
func (l *loginLimiter) evict(now time.Time, n int) {
	for k := range l.hits {
		l.prune(k, now)
	}
	target := l.maxKeys*9/10 - n
	if len(l.hits) <= target {
		return
	}
	type kv struct {
		k    string
		last time.Time
	}
	all := make([]kv, 0, len(l.hits))
	for k, hs := range l.hits {
		all = append(all, kv{k, hs[len(hs)-1]})
	}
	slices.SortFunc(all, func(a, b kv) int { return a.last.Compare(b.last) })
	for _, e := range all[:len(all)-max(target, 0)] {
		delete(l.hits, e.k)
	}
}

// addressKey is the address a limit counts: IPv4 addresses one by one, IPv6
// by /64 (what one customer usually gets).
func addressKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}
