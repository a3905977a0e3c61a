// Package protocol is what the kregress host and its guest agent agree on:
// the console lines the agent prints for the host, the kernel command-line
// keys the host passes, the guest commands the host invokes for file copy
// and workloads, and the names of the agent's built-in workloads. Both the
// agent (guest) and the runner, job and suites (host) import it; the host
// never links the agent itself.
package protocol

// Console markers, each printed by the agent at the start of a line of its
// own.
const (
	// ReadyMarker starts the line printed when SSH is being served.
	ReadyMarker = "kregress-agent: ready"
	// HostKeyMarker starts the line that carries the agent's host key
	// fingerprint (ssh.FingerprintSHA256 form), which the host pins.
	HostKeyMarker = "kregress-agent: hostkey "
)

// Kernel command-line keys the host sets for the agent.
const (
	// KeyParam carries the run's authorized SSH public key (base64 of the
	// wire form).
	KeyParam = "kregress.key"
	// PortParam is the guest TCP port the agent serves SSH on, over the
	// NIC (QEMU user networking).
	PortParam = "kregress.port"
	// SerialParam, instead of PortParam, names the virtio-serial port
	// (SerialPort) the agent serves SSH on: no NIC is needed for it.
	SerialParam = "kregress.serial"
	// NICParam=1 says the machine has a NIC the agent must bring up
	// before it loads the modules that use it (a Lustre client's LNet);
	// with PortParam it is implied.
	NICParam = "kregress.nic"
)

// SerialPort is the name of the virtio-serial port (virtserialport's
// name=, /sys/class/virtio-ports/*/name in the guest) that carries the SSH
// connection when the host passes SerialParam.
const SerialPort = "kregress.agent"

// Guest commands the agent's SSH server handles itself.
const (
	// PutCommand "kregress-put MODE PATH" writes stdin to PATH with the
	// octal permission bits MODE.
	PutCommand = "kregress-put"
	// GetCommand "kregress-get PATH" writes PATH to stdout.
	GetCommand = "kregress-get"
)

// AgentPath is where the agent binary is in the guest; "AgentPath
// WORKLOAD [flags]" runs a built-in workload.
const AgentPath = "/init"

// MetricsPrefix starts the one line on which a workload prints its figures
// as JSON, for the host to copy into result.json.
const MetricsPrefix = "KREGRESS-METRICS "

// Workloads are the agent's built-in workloads, the names a suite's test
// may give as `workload:`. The agent's own table is tied to this list by a
// test.
var Workloads = []string{"stat", "lookup", "readdir", "racer", "mount-cycle", "server-churn"}
