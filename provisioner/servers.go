package provisioner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"pgdeck/provisioner/render"
	"pgdeck/provisioner/runtime"
	"pgdeck/provisioner/runtime/docker"
	"pgdeck/provisioner/runtime/fleet"
	"pgdeck/store"
	"pgdeck/store/secret"
)

// ServersConfig says what the built-in server runs and how pgdeck opens the
// Docker hosts registered as servers.
type ServersConfig struct {
	// Builtin is this host's runtime, as PGDECK_RUNTIME configures it.
	Builtin runtime.Runtime
	// Image and PoolerImage are the images every Docker server runs
	// (PGDECK_DOCKER_IMAGE, PGDECK_DOCKER_POOLER_IMAGE).
	Image, PoolerImage string
	// PublishAddress is where a Docker server on this machine (a unix
	// socket) publishes instances; one reached over tcp publishes them on
	// its own address.
	PublishAddress string
	// Root holds each environment's own files (odoo.conf, the filestore)
	// on this host, where Odoo runs.
	Root string
}

// Servers is the directory of servers: which server an environment lives
// on, and each server's runtime, opened once. It is the fleet's Directory.
type Servers struct {
	cfg ServersConfig
	st  *store.Store
	box *secret.Box
	log *slog.Logger

	mu  sync.Mutex
	rts map[string]runtime.Runtime
}

var _ fleet.Directory = (*Servers)(nil)

// NewServers returns the directory of the servers in st.
func NewServers(cfg ServersConfig, st *store.Store, box *secret.Box, log *slog.Logger) *Servers {
	if log == nil {
		log = slog.Default()
	}
	return &Servers{cfg: cfg, st: st, box: box, log: log, rts: map[string]runtime.Runtime{}}
}

// ServerOf returns the server env lives on.
func (s *Servers) ServerOf(ctx context.Context, env string) (string, error) {
	name, err := s.st.EnvironmentServer(ctx, env)
	if errors.Is(err, store.ErrNotFound) {
		return "", fmt.Errorf("%w: %v", fleet.ErrNoServer, err)
	}
	return name, err
}

// Servers returns every server's name.
func (s *Servers) Servers(ctx context.Context) ([]string, error) {
	svs, err := s.st.ListServers(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(svs))
	for i, sv := range svs {
		out[i] = sv.Name
	}
	return out, nil
}

// Runtime returns the named server's runtime, opening it the first time.
func (s *Servers) Runtime(ctx context.Context, name string) (runtime.Runtime, error) {
	if name == store.BuiltinServer {
		return s.cfg.Builtin, nil
	}
	s.mu.Lock()
	rt, ok := s.rts[name]
	s.mu.Unlock()
	if ok {
		return rt, nil
	}
	sv, err := s.st.GetServer(ctx, name)
	if err != nil {
		return nil, err
	}
	d, err := s.open(sv)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if rt, ok := s.rts[name]; ok {
		d.Close()
		return rt, nil
	}
	s.rts[name] = d
	return d, nil
}

// open builds the Docker runtime of a registered server.
func (s *Servers) open(sv store.Server) (*docker.Runtime, error) {
	cfg := docker.Config{Host: sv.DockerHost, Image: s.cfg.Image, PoolerImage: s.cfg.PoolerImage,
		PublishAddress: s.cfg.PublishAddress, Root: s.cfg.Root, Logger: s.log.With("server", sv.Name)}
	if strings.HasPrefix(sv.DockerHost, "tcp://") {
		u, err := url.Parse(sv.DockerHost)
		if err != nil {
			return nil, err
		}
		ip, err := hostIP(u.Hostname())
		if err != nil {
			return nil, err
		}
		cfg.PublishAddress = ip
	}
	for _, f := range []struct {
		sealed []byte
		dst    *[]byte
	}{{sv.TLSCA, &cfg.CA}, {sv.TLSCert, &cfg.Cert}, {sv.TLSKey, &cfg.Key}} {
		if len(f.sealed) == 0 {
			continue
		}
		pem, err := s.box.Open(f.sealed)
		if err != nil {
			return nil, fmt.Errorf("server %s: open its TLS material: %w", sv.Name, err)
		}
		*f.dst = []byte(pem)
	}
	return docker.New(cfg)
}

// hostIP resolves a tcp engine's host to the address its instances are
// published on.
func hostIP(host string) (string, error) {
	if ip := net.ParseIP(host); ip != nil {
		return ip.String(), nil
	}
	ips, err := net.LookupIP(host)
	if err != nil || len(ips) == 0 {
		return "", fmt.Errorf("resolve %s: %v", host, err)
	}
	for _, ip := range ips {
		if ip.To4() != nil {
			return ip.String(), nil
		}
	}
	return ips[0].String(), nil
}

// forget closes and drops a server's runtime.
func (s *Servers) forget(name string) {
	s.mu.Lock()
	rt, ok := s.rts[name]
	delete(s.rts, name)
	s.mu.Unlock()
	if c, ok2 := rt.(interface{ Close() error }); ok && ok2 {
		c.Close()
	}
}

// Close closes every registered server's runtime (not the built-in one).
func (s *Servers) Close() {
	s.mu.Lock()
	names := slices.Collect(maps.Keys(s.rts))
	s.mu.Unlock()
	for _, n := range names {
		s.forget(n)
	}
}

// WithServers gives the provisioner the directory of servers: it then
// registers and removes servers and places new environments on them.
// Without it every environment lives on the built-in server.
func WithServers(s *Servers) Option {
	return func(p *Provisioner) { p.servers = s }
}

// ServerInvalidError is a server registration or an environment placement
// that cannot be done: one message per field (name, docker_host, tls,
// memory, cpus, storage; server for a placement).
type ServerInvalidError struct {
	Fields map[string]string
}

func (e *ServerInvalidError) Error() string {
	keys := slices.Sorted(maps.Keys(e.Fields))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ": " + e.Fields[k]
	}
	return "invalid server: " + strings.Join(parts, "; ")
}

func invalidServer(field, msg string) error {
	return &ServerInvalidError{Fields: map[string]string{field: msg}}
}

// ServerInput is a Docker host to register. A zero capacity field is read
// from the engine (storage only when the engine is on this machine, else
// it is not counted).
type ServerInput struct {
	Name       string
	DockerHost string
	// CA, Cert and Key are PEM: required for a tcp endpoint, refused for a
	// unix socket.
	CA, Cert, Key []byte
	MemoryBytes   int64
	CPUs          int
	StorageBytes  int64
}

var slugRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

// maxPEM bounds each TLS file.
const maxPEM = 64 << 10

// CheckSlug returns a message when name is not a DNS-safe slug of 3–40
// characters: the rule for the names of environments and servers.
func CheckSlug(name string) string {
	switch {
	case name == "":
		return "Enter a name."
	case len(name) < 3:
		return "Use at least 3 characters."
	case len(name) > 40:
		return "Use at most 40 characters."
	case !slugRE.MatchString(name):
		return "Use only lower-case letters a–z, digits 0–9 and '-', not at the start or end."
	}
	return ""
}

// CheckServerName returns a message when name cannot name a server.
func CheckServerName(name string) string {
	if name == store.BuiltinServer {
		return "This name is this host's own server. Choose another."
	}
	return CheckSlug(name)
}

// CheckDockerHost returns a message when h is not a Docker endpoint pgdeck
// can use: unix:///path/to/docker.sock or tcp://host:port.
func CheckDockerHost(h string) string {
	const use = "Use unix:///path/to/docker.sock or tcp://host:2376."
	if h == "" {
		return "Enter the Docker endpoint. " + use
	}
	if len(h) > 255 {
		return "Use at most 255 characters."
	}
	u, err := url.Parse(h)
	if err != nil {
		return "This is not an endpoint. " + use
	}
	switch u.Scheme {
	case "unix":
		if u.Host != "" || !strings.HasPrefix(u.Path, "/") || u.RawQuery != "" || u.Fragment != "" {
			return "A unix socket is unix:// and an absolute path, e.g. unix:///var/run/docker.sock."
		}
	case "tcp":
		port, err := strconv.Atoi(u.Port())
		if u.Hostname() == "" || err != nil || port < 1 || port > 65535 || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			return "A tcp endpoint is tcp://host:port, e.g. tcp://10.0.0.5:2376."
		}
	default:
		return "pgdeck talks to Docker over a unix socket or tcp with TLS. " + use
	}
	return ""
}

// RegisterServer checks a Docker host and registers it as a server: the
// engine must answer and have the images pgdeck runs. It fails with a
// *ServerInvalidError saying what is wrong, field by field, and registers
// nothing then.
func (p *Provisioner) RegisterServer(ctx context.Context, in ServerInput) (store.Server, error) {
	if p.servers == nil {
		return store.Server{}, errors.New("provisioner: servers are not configured")
	}
	fields := map[string]string{}
	if msg := CheckServerName(in.Name); msg != "" {
		fields["name"] = msg
	}
	if msg := CheckDockerHost(in.DockerHost); msg != "" {
		fields["docker_host"] = msg
	}
	tcp := strings.HasPrefix(in.DockerHost, "tcp://")
	anyTLS := len(in.CA) > 0 || len(in.Cert) > 0 || len(in.Key) > 0
	switch {
	case len(in.CA) > maxPEM || len(in.Cert) > maxPEM || len(in.Key) > maxPEM:
		fields["tls"] = "Each certificate or key file may hold at most 64 KiB."
	case tcp && (len(in.CA) == 0 || len(in.Cert) == 0 || len(in.Key) == 0):
		fields["tls"] = "A tcp endpoint needs TLS: give the CA certificate, the client certificate and its key (PEM), as for docker --tlsverify."
	case !tcp && anyTLS && fields["docker_host"] == "":
		fields["tls"] = "A unix socket takes no TLS certificates: leave them empty."
	}
	if in.MemoryBytes < 0 {
		fields["memory"] = "Enter a size of 0 or more (0: read it from the engine)."
	}
	if in.CPUs < 0 || in.CPUs > 4096 {
		fields["cpus"] = "Enter a number of CPUs from 0 to 4096 (0: read it from the engine)."
	}
	if in.StorageBytes < 0 {
		fields["storage"] = "Enter a size of 0 or more (0: read it from the engine)."
	}
	if len(fields) > 0 {
		return store.Server{}, &ServerInvalidError{Fields: fields}
	}
	if p.servers.cfg.Image == "" {
		return store.Server{}, invalidServer("docker_host", "pgdeck has no image to run PostgreSQL from on Docker: set PGDECK_DOCKER_IMAGE (and PGDECK_DOCKER_POOLER_IMAGE) and restart pgdeck first.")
	}
	svs, err := p.store.ListServers(ctx)
	if err != nil {
		return store.Server{}, err
	}
	for _, sv := range svs {
		if sv.Name == in.Name {
			return store.Server{}, invalidServer("name", "A server with this name already exists.")
		}
		if sv.DockerHost == in.DockerHost {
			return store.Server{}, invalidServer("docker_host", "This engine is already server "+sv.Name+": one engine is one server, or its capacity would count twice.")
		}
	}

	sv := store.Server{Name: in.Name, Runtime: store.ServerDocker, DockerHost: in.DockerHost,
		MemoryBytes: in.MemoryBytes, CPUs: in.CPUs, StorageBytes: in.StorageBytes}
	if anyTLS {
		sv.TLSCA, sv.TLSCert, sv.TLSKey = p.box.Seal(string(in.CA)), p.box.Seal(string(in.Cert)), p.box.Seal(string(in.Key))
	}
	d, err := p.servers.open(sv)
	if err != nil {
		field := "docker_host"
		if strings.Contains(err.Error(), "tls") {
			field = "tls"
		}
		return store.Server{}, invalidServer(field, "pgdeck cannot use this endpoint: "+err.Error())
	}
	defer d.Close()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := d.Ping(cctx); err != nil {
		if msg := tlsRefusal(err); msg != "" {
			return store.Server{}, invalidServer("tls", msg)
		}
		return store.Server{}, invalidServer("docker_host", "The Docker engine at "+in.DockerHost+" does not answer: "+engineReason(err))
	}
	if other := p.sameEngine(cctx, d, svs); other != "" {
		return store.Server{}, invalidServer("docker_host", "This engine is already server "+other+", at another endpoint: one engine is one server, or its capacity would count twice.")
	}
	c, err := d.Capacity(cctx)
	if err != nil {
		return store.Server{}, invalidServer("docker_host", "The Docker engine at "+in.DockerHost+" does not say what it has: "+engineReason(err))
	}
	filled := FillCapacity(serverCapacity(sv), c)
	sv.MemoryBytes, sv.CPUs, sv.StorageBytes = filled.Memory, filled.CPUs, filled.Storage
	// Within the page's write timeout (PGDECK_WRITE_TIMEOUT, 60 s by
	// default): the image check runs a short container.
	ictx, cancel := context.WithTimeout(ctx, 40*time.Second)
	defer cancel()
	if err := d.CheckImages(ictx); err != nil {
		return store.Server{}, invalidServer("docker_host", "The Docker engine at "+in.DockerHost+" cannot run pgdeck's images: "+engineReason(err))
	}
	out, err := p.store.CreateServer(ctx, sv)
	if errors.Is(err, store.ErrConflict) {
		return store.Server{}, invalidServer("name", "A server with this name already exists.")
	}
	if err != nil {
		return store.Server{}, err
	}
	if err := p.store.SetServerStatus(ctx, out.Name, store.ServerOnline, "", time.Now()); err == nil {
		out.Status = store.ServerOnline
	}
	p.log.Info("server registered", "server", out.Name, "docker_host", out.DockerHost,
		"capacity", serverCapacity(out).String())
	return out, nil
}

// FillCapacity returns c with each resource it leaves out (0) taken from
// what an engine has.
func FillCapacity(c render.Resources, has runtime.Resources) render.Resources {
	if c.Memory == 0 {
		c.Memory = int64(has.MemoryMB) << 20
	}
	if c.CPUs == 0 {
		c.CPUs = int(has.CPUs)
	}
	if c.Storage == 0 {
		c.Storage = int64(has.StorageGB) << 30
	}
	return c
}

// engineReason is an engine error without the runtime's prefixes.
func engineReason(err error) string {
	msg := err.Error()
	for _, p := range []string{"docker runtime: engine: ", "docker runtime: "} {
		msg = strings.TrimPrefix(msg, p)
	}
	return msg
}

// engineIdentifier is a runtime that can say which Docker engine it talks
// to.
type engineIdentifier interface {
	EngineID(ctx context.Context) (string, error)
}

// sameEngine returns the name of the server among svs whose engine is the
// one d reaches (the same engine ID at another endpoint: its unix socket
// and its tcp port, say), or "". Servers that do not answer within ctx
// cannot be compared and are passed over.
func (p *Provisioner) sameEngine(ctx context.Context, d engineIdentifier, svs []store.Server) string {
	id, err := d.EngineID(ctx)
	if err != nil || id == "" {
		return ""
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		match string
	)
	for _, sv := range svs {
		if sv.Runtime != store.ServerDocker {
			continue
		}
		rt, err := p.servers.Runtime(ctx, sv.Name)
		if err != nil {
			continue
		}
		other, ok := rt.(engineIdentifier)
		if !ok {
			continue
		}
		wg.Go(func() {
			if oid, err := other.EngineID(ctx); err == nil && oid == id {
				mu.Lock()
				match = sv.Name
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return match
}

// tlsRefusal says which side of a TLS endpoint refused the other, or ""
// when err is not a TLS refusal. The Docker client keeps only the text of
// the handshake's error.
func tlsRefusal(err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "x509:"):
		return "pgdeck does not trust the engine's certificate with this CA certificate (it must be the CA that signed dockerd's --tlscert): " + engineReason(err)
	case strings.Contains(msg, "remote error: tls:"):
		return "The engine refused pgdeck's client certificate (it must be signed by the CA dockerd was started with, --tlscacert): " + engineReason(err)
	}
	return ""
}

// ErrBuiltinServer is returned when the built-in server is to be removed.
var ErrBuiltinServer = errors.New("this host's own server cannot be removed: PGDECK_RUNTIME makes it")

// RemoveServer forgets a registered server that holds no environment
// (store.ErrServerInUse otherwise).
func (p *Provisioner) RemoveServer(ctx context.Context, name string) error {
	if name == store.BuiltinServer {
		return ErrBuiltinServer
	}
	if err := p.store.DeleteServer(ctx, name); err != nil {
		return err
	}
	if p.servers != nil {
		p.servers.forget(name)
	}
	p.log.Info("server removed", "server", name)
	return nil
}

// ServerLoad is a server with what its environments take and what is left.
type ServerLoad struct {
	store.Server
	// Environments lists the names of the environments on it.
	Environments []string
	Used         render.Resources
	// Free is the capacity less Used; a resource without capacity is not
	// counted (math.MaxInt64 / MaxInt).
	Free render.Resources
}

// Capacity is the server's capacity as render.Resources (0: not counted).
func (l ServerLoad) Capacity() render.Resources { return serverCapacity(l.Server) }

func serverCapacity(sv store.Server) render.Resources {
	return render.Resources{Memory: sv.MemoryBytes, CPUs: sv.CPUs, Storage: sv.StorageBytes}
}

// ServerLoads returns every server with what its environments take: each
// environment its plan's resources, and its replica as much again.
func (p *Provisioner) ServerLoads(ctx context.Context) ([]ServerLoad, error) {
	svs, err := p.store.ListServers(ctx)
	if err != nil {
		return nil, err
	}
	envs, err := p.store.ListEnvironments(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]ServerLoad, len(svs))
	for i, sv := range svs {
		if sv.Builtin {
			// This host's capacity is PGDECK_CAPACITY (with, on Docker,
			// what the engine has for what it leaves out).
			c := p.cfg.Capacity
			sv.MemoryBytes, sv.CPUs, sv.StorageBytes = c.Memory, c.CPUs, c.Storage
		}
		out[i] = ServerLoad{Server: sv}
		for _, e := range envs {
			if e.Server != sv.Name {
				continue
			}
			out[i].Environments = append(out[i].Environments, e.Name)
			res, err := render.PlanResources(e.Plan)
			if err != nil {
				continue
			}
			out[i].Used = out[i].Used.Plus(res)
			if e.ReplicaPort != nil {
				out[i].Used = out[i].Used.Plus(render.ReplicaResources(res))
			}
		}
		out[i].Free = freeOf(out[i].Capacity(), out[i].Used)
	}
	return out, nil
}

// freeOf is capacity less used; a resource without capacity is not
// counted.
func freeOf(c, used render.Resources) render.Resources {
	free := render.Resources{Memory: c.Memory - used.Memory, CPUs: c.CPUs - used.CPUs, Storage: c.Storage - used.Storage}
	if c.Memory == 0 {
		free.Memory = math.MaxInt64
	}
	if c.CPUs == 0 {
		free.CPUs = math.MaxInt
	}
	if c.Storage == 0 {
		free.Storage = math.MaxInt64
	}
	return free
}

// PlaceEnvironment chooses the server a new environment on plan lives on:
// choice when the operator made one (it must exist, be reachable and hold
// the plan), else the reachable server with the most free memory (then
// CPUs) that holds the plan. It fails with a *ServerInvalidError (field
// "server") saying why.
func (p *Provisioner) PlaceEnvironment(ctx context.Context, plan, choice string) (string, error) {
	need, err := render.PlanResources(plan)
	if err != nil {
		return "", err
	}
	loads, err := p.ServerLoads(ctx)
	if err != nil {
		return "", err
	}
	planTitle := "a " + plan
	if spec, err := render.LookupPlan(plan); err == nil {
		planTitle = "a " + spec.Title
		if strings.ContainsRune("AEIOU", rune(spec.Title[0])) {
			planTitle = "an " + spec.Title
		}
	}
	if choice != "" {
		i := slices.IndexFunc(loads, func(l ServerLoad) bool { return l.Name == choice })
		if i < 0 {
			return "", invalidServer("server", "There is no server "+choice+". Choose one of the list.")
		}
		l := loads[i]
		if l.Status == store.ServerOffline {
			return "", invalidServer("server", "Server "+choice+" is offline ("+l.Reason+"). Choose another, or wait until it is back.")
		}
		if ok, why := need.FitsIn(l.Free); !ok {
			return "", invalidServer("server", "Server "+choice+" cannot hold "+planTitle+" environment: "+why+".")
		}
		return choice, nil
	}
	best := -1
	var short []string
	for i, l := range loads {
		if l.Status == store.ServerOffline {
			short = append(short, l.Name+" is offline")
			continue
		}
		if ok, why := need.FitsIn(l.Free); !ok {
			short = append(short, l.Name+": "+why)
			continue
		}
		if best < 0 || roomier(l.Free, loads[best].Free) {
			best = i
		}
	}
	if best < 0 {
		return "", invalidServer("server", "No server can hold "+planTitle+" environment ("+strings.Join(short, "; ")+"). Register a server or raise a capacity.")
	}
	return loads[best].Name, nil
}

// roomier reports whether a has more free memory than b, then more CPUs.
func roomier(a, b render.Resources) bool {
	if a.Memory != b.Memory {
		return a.Memory > b.Memory
	}
	return a.CPUs > b.CPUs
}
