package supervisor

import "github.com/svcgate/svcgate"

// Program declares one supervised program. It is both the configuration
// file's shape (YAML) and the form runtime-created programs are persisted in
// under the state directory (JSON).
type Program struct {
	Command     string            `yaml:"command" json:"command"`
	Args        []string          `yaml:"args" json:"args,omitempty"`
	Env         map[string]string `yaml:"env" json:"env,omitempty"`
	Dir         string            `yaml:"dir" json:"dir,omitempty"`
	DisplayName string            `yaml:"display_name" json:"display_name,omitempty"`
	Description string            `yaml:"description" json:"description,omitempty"`
	// Autostart starts the program when the agent starts (start type auto);
	// nil means true.
	Autostart *bool `yaml:"autostart" json:"autostart,omitempty"`
	// Disabled refuses starts (start type disabled).
	Disabled bool `yaml:"disabled" json:"disabled,omitempty"`
	// Autorestart is never, on_failure (default) or always.
	Autorestart string `yaml:"autorestart" json:"autorestart,omitempty"`
	// StartSeconds is how long a process must stay up to count as running
	// (default 1).
	StartSeconds *float64 `yaml:"start_seconds" json:"start_seconds,omitempty"`
	// StartRetries is how many failed starts in a row are retried with
	// exponential backoff before the program is failed (default 3).
	StartRetries *int `yaml:"start_retries" json:"start_retries,omitempty"`
	// BackoffInitial and BackoffMax bound the delay between restarts
	// (defaults 1s and 30s).
	BackoffInitial svcgate.Duration `yaml:"backoff_initial" json:"backoff_initial,omitempty"`
	BackoffMax     svcgate.Duration `yaml:"backoff_max" json:"backoff_max,omitempty"`
	// StopSignal is sent to the process group on stop (default TERM).
	StopSignal string `yaml:"stop_signal" json:"stop_signal,omitempty"`
	// StopTimeout is how long to wait after StopSignal before SIGKILL
	// (default 10s).
	StopTimeout svcgate.Duration `yaml:"stop_timeout" json:"stop_timeout,omitempty"`
	// LogMaxBytes and LogBackups bound the captured stdout/stderr files
	// (defaults 10 MiB and 3).
	LogMaxBytes *int64 `yaml:"log_max_bytes" json:"log_max_bytes,omitempty"`
	LogBackups  *int   `yaml:"log_backups" json:"log_backups,omitempty"`
}
