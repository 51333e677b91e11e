package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"pgdeck/provisioner/render"
)

// configFrom loads the configuration from args and the given variables only.
func configFrom(args []string, env map[string]string) (Config, error) {
	fs := flag.NewFlagSet("pgdeck", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return loadConfig(fs, args, func(k string) string { return env[k] })
}

func TestConfigDefaults(t *testing.T) {
	c, err := configFrom(nil, nil)
	if err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	want := Config{
		Addr:             "127.0.0.1:8080",
		DataDir:          "./data",
		Runtime:          "local",
		Docker:           DockerConfig{Host: "unix:///var/run/docker.sock", PublishAddress: "127.0.0.1"},
		MonitorInterval:  5 * time.Second,
		MonitorTimeout:   3 * time.Second,
		MonitorConfirm:   2,
		ReplicaWarnBytes: 50_000_000,
		ReplicaWarnLag:   15 * time.Second,
		ReplicaCritBytes: 100_000_000,
		ReplicaCritLag:   30 * time.Second,
		LogFormat:        "text",
		LogLevel:         "info",
		PortRange:        "25432-25999",
		Workers:          4,
		ReadTimeout:      30 * time.Second,
		WriteTimeout:     60 * time.Second,
		IdleTimeout:      120 * time.Second,
		ShutdownGrace:    30 * time.Second,

		BackupUploadLimit: 20_000_000_000,
		BackupWarnAge:     24 * time.Hour,
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", c, want)
	}
	if got := c.secretKeyPath(); got != filepath.Join("data", "secret.key") {
		t.Errorf("secret key path = %q, want data/secret.key", got)
	}
	if got := c.envRoot(); !filepath.IsAbs(got) || filepath.Base(got) != "envs" {
		t.Errorf("environment root = %q, want an absolute …/envs", got)
	}
}

func TestConfigFromEnvironmentAndFlags(t *testing.T) {
	cases := []struct {
		env, flag, value string
		got              func(Config) any
		want             any
	}{
		{"PGDECK_ADDR", "addr", "0.0.0.0:9000", func(c Config) any { return c.Addr }, "0.0.0.0:9000"},
		{"PGDECK_DATA_DIR", "data-dir", "/srv/pgdeck", func(c Config) any { return c.DataDir }, "/srv/pgdeck"},
		{"PGDECK_DATABASE_URL", "database-url", "postgres://pgdeck@db/pgdeck", func(c Config) any { return c.DatabaseURL }, "postgres://pgdeck@db/pgdeck"},
		{"PGDECK_MONITOR_INTERVAL", "monitor-interval", "750ms", func(c Config) any { return c.MonitorInterval }, 750 * time.Millisecond},
		{"PGDECK_MONITOR_TIMEOUT", "monitor-timeout", "10s", func(c Config) any { return c.MonitorTimeout }, 10 * time.Second},
		{"PGDECK_MONITOR_CONFIRM", "monitor-confirm", "3", func(c Config) any { return c.MonitorConfirm }, 3},
		{"PGDECK_REPLICA_WARN_BYTES", "replica-warn-bytes", "10 MB", func(c Config) any { return c.ReplicaWarnBytes }, int64(10_000_000)},
		{"PGDECK_REPLICA_CRIT_BYTES", "replica-crit-bytes", "209715200", func(c Config) any { return c.ReplicaCritBytes }, int64(200 << 20)},
		{"PGDECK_REPLICA_WARN_SECONDS", "replica-warn-seconds", "2.5", func(c Config) any { return c.ReplicaWarnLag }, 2500 * time.Millisecond},
		{"PGDECK_REPLICA_CRIT_SECONDS", "replica-crit-seconds", "60", func(c Config) any { return c.ReplicaCritLag }, time.Minute},
		{"PGDECK_CAPACITY", "capacity", "memory=64GB,cpus=16,storage=1TB", func(c Config) any { return c.Capacity },
			render.Resources{Memory: 64 * render.GiB, CPUs: 16, Storage: 1024 * render.GiB}},
		{"PGDECK_SECRET_KEY_FILE", "secret-key-file", "/etc/pgdeck/key", func(c Config) any { return c.secretKeyPath() }, "/etc/pgdeck/key"},
		{"PGDECK_LOG_FORMAT", "log-format", "json", func(c Config) any { return c.LogFormat }, "json"},
		{"PGDECK_LOG_LEVEL", "log-level", "debug", func(c Config) any { return c.LogLevel }, "debug"},
		{"PGDECK_PG_BIN_DIR", "pg-bin-dir", "/opt/pg/bin", func(c Config) any { return c.PGBinDir }, "/opt/pg/bin"},
		{"PGDECK_PORT_RANGE", "port-range", "30000-30100", func(c Config) any { return c.PortRange }, "30000-30100"},
		{"PGDECK_WORKERS", "workers", "8", func(c Config) any { return c.Workers }, 8},
		{"PGDECK_SHUTDOWN_GRACE", "shutdown-grace", "2m", func(c Config) any { return c.ShutdownGrace }, 2 * time.Minute},
		{"PGDECK_ODOO_USER", "odoo-user", "odoo", func(c Config) any { return c.OdooUser }, "odoo"},
		{"PGDECK_PUBLIC_URL", "public-url", "https://pgdeck.example.com", func(c Config) any { return c.PublicURL.String() }, "https://pgdeck.example.com"},
		{"PGDECK_TRUSTED_PROXIES", "trusted-proxies", "10.1.2.3/8, ::1", func(c Config) any { return fmt.Sprint(c.TrustedProxies) }, "[10.0.0.0/8 ::1/128]"},
		{"PGDECK_METRICS_ADDR", "metrics-addr", "127.0.0.1:9100", func(c Config) any { return c.MetricsAddr }, "127.0.0.1:9100"},
		{"PGDECK_READ_TIMEOUT", "read-timeout", "5s", func(c Config) any { return c.ReadTimeout }, 5 * time.Second},
		{"PGDECK_WRITE_TIMEOUT", "write-timeout", "2m", func(c Config) any { return c.WriteTimeout }, 2 * time.Minute},
		{"PGDECK_IDLE_TIMEOUT", "idle-timeout", "10s", func(c Config) any { return c.IdleTimeout }, 10 * time.Second},
		{"PGDECK_DOCKER_HOST", "docker-host", "tcp://10.0.0.5:2376", func(c Config) any { return c.Docker.Host }, "tcp://10.0.0.5:2376"},
		{"PGDECK_DOCKER_IMAGE", "docker-image", "postgres:15", func(c Config) any { return c.Docker.Image }, "postgres:15"},
		{"PGDECK_DOCKER_POOLER_IMAGE", "docker-pooler-image", "edoburu/pgbouncer", func(c Config) any { return c.Docker.PoolerImage }, "edoburu/pgbouncer"},
		{"PGDECK_DOCKER_PUBLISH_ADDRESS", "docker-publish-address", "10.0.0.5", func(c Config) any { return c.Docker.PublishAddress }, "10.0.0.5"},
	}
	for _, tc := range cases {
		t.Run(tc.env, func(t *testing.T) {
			c, err := configFrom(nil, map[string]string{tc.env: tc.value})
			if err != nil {
				t.Fatalf("%s=%s: %v", tc.env, tc.value, err)
			}
			if got := tc.got(c); got != tc.want {
				t.Errorf("from %s: got %v, want %v", tc.env, got, tc.want)
			}
			c, err = configFrom([]string{"--" + tc.flag, tc.value}, nil)
			if err != nil {
				t.Fatalf("--%s %s: %v", tc.flag, tc.value, err)
			}
			if got := tc.got(c); got != tc.want {
				t.Errorf("from --%s: got %v, want %v", tc.flag, got, tc.want)
			}
		})
	}

	t.Run("a flag wins over the variable", func(t *testing.T) {
		env := map[string]string{"PGDECK_ADDR": "127.0.0.1:7000", "PGDECK_WORKERS": "2", "PGDECK_LOG_LEVEL": "error"}
		c, err := configFrom([]string{"--addr", "127.0.0.1:7001", "-workers=6"}, env)
		if err != nil {
			t.Fatal(err)
		}
		if c.Addr != "127.0.0.1:7001" || c.Workers != 6 {
			t.Errorf("flags lost to variables: addr %q, workers %d", c.Addr, c.Workers)
		}
		if c.LogLevel != "error" {
			t.Errorf("a variable without a flag was ignored: log level %q", c.LogLevel)
		}
	})

	t.Run("values are trimmed", func(t *testing.T) {
		c, err := configFrom(nil, map[string]string{"PGDECK_ADDR": "  127.0.0.1:7002 ", "PGDECK_WORKERS": " 3 "})
		if err != nil {
			t.Fatal(err)
		}
		if c.Addr != "127.0.0.1:7002" || c.Workers != 3 {
			t.Errorf("addr %q, workers %d", c.Addr, c.Workers)
		}
	})

	t.Run("TLS certificate and key", func(t *testing.T) {
		c, err := configFrom([]string{"--tls-cert-file", "/c.pem", "--tls-key-file", "/k.pem"}, nil)
		if err != nil || c.TLSCertFile != "/c.pem" || c.TLSKeyFile != "/k.pem" {
			t.Errorf("TLS = %q %q, %v", c.TLSCertFile, c.TLSKeyFile, err)
		}
	})
}

func TestConfigRejectsBadValues(t *testing.T) {
	cases := []struct {
		env, value, want string
	}{
		{"PGDECK_MONITOR_INTERVAL", "often", "PGDECK_MONITOR_INTERVAL"},
		{"PGDECK_MONITOR_INTERVAL", "10ms", "PGDECK_MONITOR_INTERVAL: want a duration of at least 100ms"},
		{"PGDECK_MONITOR_TIMEOUT", "-1s", "PGDECK_MONITOR_TIMEOUT"},
		{"PGDECK_MONITOR_TIMEOUT", "3", "PGDECK_MONITOR_TIMEOUT"},
		{"PGDECK_MONITOR_CONFIRM", "0", "PGDECK_MONITOR_CONFIRM: want 1 to 10"},
		{"PGDECK_MONITOR_CONFIRM", "11", "PGDECK_MONITOR_CONFIRM"},
		{"PGDECK_REPLICA_WARN_BYTES", "lots", "PGDECK_REPLICA_WARN_BYTES: want a positive size"},
		{"PGDECK_REPLICA_WARN_BYTES", "0", "PGDECK_REPLICA_WARN_BYTES"},
		{"PGDECK_REPLICA_CRIT_BYTES", "10MiB", "PGDECK_REPLICA_CRIT_BYTES"},
		{"PGDECK_REPLICA_CRIT_BYTES", "20MB", "PGDECK_REPLICA_CRIT_BYTES (\"20MB\") is below PGDECK_REPLICA_WARN_BYTES"},
		{"PGDECK_REPLICA_WARN_SECONDS", "-1", "PGDECK_REPLICA_WARN_SECONDS: want a positive number of seconds"},
		{"PGDECK_REPLICA_CRIT_SECONDS", "10", "PGDECK_REPLICA_CRIT_SECONDS (\"10\") is below PGDECK_REPLICA_WARN_SECONDS"},
		{"PGDECK_WORKERS", "0", "PGDECK_WORKERS: want 1 to 64"},
		{"PGDECK_WORKERS", "many", "PGDECK_WORKERS"},
		{"PGDECK_WORKERS", "65", "PGDECK_WORKERS"},
		{"PGDECK_RUNTIME", "kubernetes", "PGDECK_RUNTIME: want local or docker"},
		{"PGDECK_LOG_FORMAT", "xml", "PGDECK_LOG_FORMAT: want text or json"},
		{"PGDECK_LOG_LEVEL", "loud", "PGDECK_LOG_LEVEL: want debug, info, warn or error"},
		{"PGDECK_PORT_RANGE", "25432", "PGDECK_PORT_RANGE"},
		{"PGDECK_PORT_RANGE", "80-90", "PGDECK_PORT_RANGE: want LOW-HIGH within 1024-65535"},
		{"PGDECK_PORT_RANGE", "30000-20000", "PGDECK_PORT_RANGE"},
		{"PGDECK_PORT_RANGE", "30000-70000", "PGDECK_PORT_RANGE"},
		{"PGDECK_TLS_CERT_FILE", "/c.pem", "PGDECK_TLS_CERT_FILE and PGDECK_TLS_KEY_FILE go together"},
		{"PGDECK_TLS_KEY_FILE", "/k.pem", "PGDECK_TLS_CERT_FILE and PGDECK_TLS_KEY_FILE go together"},
		{"PGDECK_PUBLIC_URL", "pgdeck.example.com", "PGDECK_PUBLIC_URL: want http(s)://host[:port]"},
		{"PGDECK_PUBLIC_URL", "ftp://pgdeck.example.com", "PGDECK_PUBLIC_URL"},
		{"PGDECK_TRUSTED_PROXIES", "10.0.0.0/8,proxy", "PGDECK_TRUSTED_PROXIES: want CIDRs"},
		{"PGDECK_READ_TIMEOUT", "10ms", "PGDECK_READ_TIMEOUT: want a duration of at least 1s"},
		{"PGDECK_IDLE_TIMEOUT", "never", "PGDECK_IDLE_TIMEOUT"},
		{"PGDECK_CAPACITY", "memory=64", "PGDECK_CAPACITY: want e.g. memory=64GB"},
		{"PGDECK_CAPACITY", "gpus=2", "PGDECK_CAPACITY"},
		{"PGDECK_CAPACITY", "cpus=-1", "PGDECK_CAPACITY"},
	}
	for _, tc := range cases {
		t.Run(tc.env+"="+tc.value, func(t *testing.T) {
			_, err := configFrom(nil, map[string]string{tc.env: tc.value})
			if err == nil {
				t.Fatalf("%s=%q accepted", tc.env, tc.value)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.value) && !strings.Contains(tc.env, "TLS") {
				t.Errorf("error %q does not quote the bad value %q", err, tc.value)
			}
		})
	}

	t.Run("the docker runtime", func(t *testing.T) {
		c, err := configFrom(nil, map[string]string{"PGDECK_RUNTIME": "docker", "PGDECK_DOCKER_IMAGE": "pgdeck/postgres:15"})
		if err != nil || c.Runtime != "docker" || c.Docker.Image != "pgdeck/postgres:15" || c.Docker.Host != "unix:///var/run/docker.sock" {
			t.Errorf("PGDECK_RUNTIME=docker: %+v, %v", c.Docker, err)
		}
		for _, bad := range []struct {
			env  map[string]string
			want string
		}{
			{map[string]string{"PGDECK_RUNTIME": "docker"}, "PGDECK_DOCKER_IMAGE"},
			{map[string]string{"PGDECK_RUNTIME": "docker", "PGDECK_DOCKER_IMAGE": "i", "PGDECK_DOCKER_HOST": "/var/run/docker.sock"}, "PGDECK_DOCKER_HOST: want unix:///path or tcp://host:port"},
			{map[string]string{"PGDECK_RUNTIME": "docker", "PGDECK_DOCKER_IMAGE": "i", "PGDECK_DOCKER_PUBLISH_ADDRESS": "localhost"}, "PGDECK_DOCKER_PUBLISH_ADDRESS: want an IP address"},
		} {
			if _, err := configFrom(nil, bad.env); err == nil || !strings.Contains(err.Error(), bad.want) {
				t.Errorf("%v: error %v, want %q", bad.env, err, bad.want)
			}
		}
	})

	t.Run("empty address and data dir given as flags", func(t *testing.T) {
		_, err := configFrom([]string{"--addr", " ", "--data-dir", ""}, nil)
		if err == nil || !strings.Contains(err.Error(), "PGDECK_ADDR") || !strings.Contains(err.Error(), "PGDECK_DATA_DIR") {
			t.Errorf("err = %v, want both PGDECK_ADDR and PGDECK_DATA_DIR named", err)
		}
	})

	t.Run("a bad flag is named after its variable", func(t *testing.T) {
		_, err := configFrom([]string{"--workers", "0"}, map[string]string{"PGDECK_WORKERS": "4"})
		if err == nil || !strings.Contains(err.Error(), "PGDECK_WORKERS") {
			t.Errorf("err = %v, want PGDECK_WORKERS named", err)
		}
	})

	t.Run("every bad value is reported at once", func(t *testing.T) {
		_, err := configFrom(nil, map[string]string{"PGDECK_WORKERS": "0", "PGDECK_LOG_FORMAT": "xml", "PGDECK_MONITOR_INTERVAL": "x",
			"PGDECK_SHUTDOWN_GRACE": "0s"})
		if err == nil {
			t.Fatal("accepted")
		}
		for _, v := range []string{"PGDECK_WORKERS", "PGDECK_LOG_FORMAT", "PGDECK_MONITOR_INTERVAL", "PGDECK_SHUTDOWN_GRACE"} {
			if !strings.Contains(err.Error(), v) {
				t.Errorf("error %q does not name %s", err, v)
			}
		}
	})

	t.Run("unknown flag", func(t *testing.T) {
		if _, err := configFrom([]string{"--colour", "blue"}, nil); err == nil || !strings.Contains(err.Error(), "colour") {
			t.Errorf("err = %v, want the unknown flag named", err)
		}
	})
}

// TestDockerRuntimeNeedsItsEngine: PGDECK_RUNTIME=docker refuses to start
// when its engine does not answer, naming the setting.
func TestDockerRuntimeNeedsItsEngine(t *testing.T) {
	c, err := configFrom(nil, map[string]string{"PGDECK_RUNTIME": "docker", "PGDECK_DOCKER_IMAGE": "pgdeck/postgres:15",
		"PGDECK_DOCKER_HOST": "unix://" + filepath.Join(t.TempDir(), "no-docker.sock"), "PGDECK_DATA_DIR": t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = newRuntime(t.Context(), c, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || !strings.Contains(err.Error(), "PGDECK_DOCKER_HOST") {
		t.Fatalf("docker runtime without an engine: error %v, want one naming PGDECK_DOCKER_HOST", err)
	}
}
