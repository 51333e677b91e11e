// Package docker runs pgdeck instances as containers through the Docker
// Engine API: one user-defined bridge network per environment, one named
// volume per instance for its data, labels (pgdeck.env, pgdeck.role) from
// which everything is found again after a restart of pgdeck or dockerd,
// and restart policy unless-stopped. Containers run explicit commands
// (initdb, postgres, pg_basebackup, pgbouncer) as the image's postgres
// user, so any image that ships those binaries works.
package docker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"

	"pgdeck/provisioner/runtime"
	"pgdeck/provisioner/runtime/envdir"
)

// Labels put on everything the runtime makes.
const (
	labelManaged = "pgdeck.managed"
	labelEnv     = "pgdeck.env"
	labelRole    = "pgdeck.role"
	// labelPort is the instance's port: published on the host and listened
	// on inside the container.
	labelPort = "pgdeck.port"
	// labelConfig is a hash of what the container was made from (image,
	// port, resources, program): a different one re-creates it.
	labelConfig = "pgdeck.config"
)

// The paths inside an instance's container. The data volume is mounted on
// the postgres user's home, which the image owns as postgres: a new volume
// takes that ownership.
const (
	volumeDir  = "/var/lib/postgresql"
	dataDir    = volumeDir + "/pgdata"
	socketDir  = volumeDir + "/run"
	passFile   = volumeDir + "/primary.pgpass"
	bouncerIni = volumeDir + "/.pgdeck-pgbouncer.ini"
	superuser  = "postgres"
	runAsUser  = "postgres"
)

// opTimeout bounds one Engine API call made without a caller's context
// (Address, PortFree, ClientNetwork).
const opTimeout = 15 * time.Second

// Config configures the Docker runtime.
type Config struct {
	// Host is the Docker Engine's address ("unix:///var/run/docker.sock",
	// "tcp://host:2376").
	Host string
	// Image runs PostgreSQL (initdb, postgres, pg_basebackup, psql);
	// PoolerImage runs PgBouncer ("" = Image).
	Image, PoolerImage string
	// BinDir is where the image keeps the PostgreSQL binaries; "" probes
	// the image (/usr/lib/postgresql/*/bin, /usr/local/bin, /usr/bin).
	BinDir string
	// PublishAddress is the host address instances are published on
	// (default 127.0.0.1); pgdeck and Odoo reach them there.
	PublishAddress string
	// Root holds one folder per environment for its own files (odoo.conf,
	// the filestore), on the host where Odoo runs.
	Root string
	// CA, Cert and Key (PEM) secure a tcp Host; empty for a unix socket.
	CA, Cert, Key []byte
	// Logger receives the runtime's logs; nil means slog.Default().
	Logger *slog.Logger
}

// Runtime is the Docker runtime. It is safe for concurrent use; operations
// that change one instance are serialised.
type Runtime struct {
	cli     *client.Client
	image   string
	pooler  string
	binDir  string
	publish string
	log     *slog.Logger
	// envs are the environments' own files on the host (odoo.conf, the
	// filestore).
	envs envdir.Dirs

	mu     sync.Mutex
	locks  map[string]*sync.Mutex
	probes map[string]*probe
}

var _ runtime.Runtime = (*Runtime)(nil)

// New checks the configuration and builds a client of the engine; it does
// not contact the engine (Ping does).
func New(cfg Config) (*Runtime, error) {
	if cfg.Host == "" {
		return nil, errors.New("docker runtime: no engine host configured")
	}
	if cfg.Image == "" {
		return nil, errors.New("docker runtime: no image configured")
	}
	if cfg.Root == "" {
		return nil, errors.New("docker runtime: no root folder configured")
	}
	root, err := filepath.Abs(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("docker runtime: root %q: %w", cfg.Root, err)
	}
	var opts []client.Opt
	if len(cfg.CA) > 0 || len(cfg.Cert) > 0 || len(cfg.Key) > 0 {
		tc, err := tlsConfig(cfg.CA, cfg.Cert, cfg.Key)
		if err != nil {
			return nil, fmt.Errorf("docker runtime: %w", err)
		}
		// Before WithHost, which sets up this transport's dialer.
		opts = append(opts, client.WithHTTPClient(&http.Client{Transport: &http.Transport{TLSClientConfig: tc}}), client.WithScheme("https"))
	}
	opts = append(opts, client.WithHost(cfg.Host), client.WithAPIVersionNegotiation())
	cli, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker runtime: %w", err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	publish := cfg.PublishAddress
	if publish == "" {
		publish = "127.0.0.1"
	}
	pooler := cfg.PoolerImage
	if pooler == "" {
		pooler = cfg.Image
	}
	log := logger.With("runtime", "docker")
	return &Runtime{
		cli:     cli,
		image:   cfg.Image,
		pooler:  pooler,
		binDir:  cfg.BinDir,
		publish: publish,
		log:     log,
		envs:    envdir.Dirs{Root: root, Runtime: "docker runtime", Taken: envTaken, Log: log},
		locks:   map[string]*sync.Mutex{},
		probes:  map[string]*probe{},
	}, nil
}

// tlsConfig builds a client TLS configuration from PEM bytes.
func tlsConfig(ca, cert, key []byte) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(ca) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca) {
			return nil, errors.New("tls: no certificate in the CA PEM")
		}
		tc.RootCAs = pool
	}
	if len(cert) > 0 || len(key) > 0 {
		pair, err := tls.X509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("tls: client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc, nil
}

// Close closes the engine client.
func (r *Runtime) Close() error { return r.cli.Close() }

// Ping checks that the engine answers.
func (r *Runtime) Ping(ctx context.Context) error {
	if _, err := r.cli.Ping(ctx); err != nil {
		return fmt.Errorf("docker runtime: engine: %w", err)
	}
	return nil
}

// Client returns the engine client, for tests and tools that look at the
// containers themselves.
func (r *Runtime) Client() *client.Client { return r.cli }

func isPooler(id runtime.InstanceID) bool {
	return id.Role == runtime.RolePooler || id.Role == runtime.RoleReplicaPooler
}

// ContainerName is the instance's container: pgdeck-<env>-<role>.
func ContainerName(id runtime.InstanceID) string {
	return "pgdeck-" + id.Env + "-" + string(id.Role)
}

// VolumeName is the instance's data volume: pgdeck-<env>-<role>-data.
func VolumeName(id runtime.InstanceID) string { return ContainerName(id) + "-data" }

// NetworkName is the environment's network: pgdeck-<env>.
func NetworkName(env string) string { return "pgdeck-" + env }

// FilestoreVolume is the environment's filestore volume.
func FilestoreVolume(env string) string { return "pgdeck-" + env + "-filestore" }

func (r *Runtime) lock(key string) func() {
	r.mu.Lock()
	l, ok := r.locks[key]
	if !ok {
		l = &sync.Mutex{}
		r.locks[key] = l
	}
	r.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// InstancePath returns the path inside the instance's container of the file
// that WriteFile(id, rel, …) writes, "" when id or rel is invalid.
func (r *Runtime) InstancePath(id runtime.InstanceID, rel string) string {
	if id.Validate() != nil {
		return ""
	}
	clean, err := runtime.CleanRel(rel)
	if err != nil {
		return ""
	}
	return path.Join(volumeDir, clean)
}

// inspect returns the instance's container, or an error wrapping
// runtime.ErrMissing when there is none. A container of that name without
// the instance's labels is not pgdeck's, and an error.
func (r *Runtime) inspect(ctx context.Context, id runtime.InstanceID) (container.InspectResponse, error) {
	if err := id.Validate(); err != nil {
		return container.InspectResponse{}, err
	}
	c, err := r.cli.ContainerInspect(ctx, ContainerName(id))
	if cerrdefs.IsNotFound(err) {
		return c, fmt.Errorf("docker runtime: %s: %w", id, runtime.ErrMissing)
	}
	if err != nil {
		return c, fmt.Errorf("docker runtime: inspect %s: %w", id, err)
	}
	if c.Config == nil || c.State == nil || c.Config.Labels[labelManaged] != "true" ||
		c.Config.Labels[labelEnv] != id.Env || c.Config.Labels[labelRole] != string(id.Role) {
		return c, fmt.Errorf("docker runtime: container %s exists but is not pgdeck's %s (labels %v)", ContainerName(id), id, c.Config.Labels)
	}
	return c, nil
}

// portOf reads the instance's port from its container's label.
func portOf(c container.InspectResponse) int {
	if c.Config == nil {
		return 0
	}
	p, _ := strconv.Atoi(c.Config.Labels[labelPort])
	return p
}

// oneLine joins a log's lines with " | " ("empty" when there are none).
func oneLine(log string) string {
	tail := strings.TrimSpace(log)
	if tail == "" {
		return "empty"
	}
	return strings.Join(strings.Fields(strings.ReplaceAll(tail, "\n", " | ")), " ")
}
