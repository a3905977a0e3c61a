package proc

import "strconv"

// State is the state letter of /proc/PID/stat ("" when there is none),
// for the external tests.
func State(pid int) string {
	_, state, _ := stat("/proc/" + strconv.Itoa(pid))
	return state
}
