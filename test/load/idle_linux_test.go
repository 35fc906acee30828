package load

import (
	"strconv"

	"golang.org/x/sys/unix"
)

// idleSyscalls are where an idle Go thread waits: a parked M (futex), the netpoller
// (epoll_pwait), sysmon (nanosleep).
var idleSyscalls = map[string]bool{
	strconv.Itoa(unix.SYS_FUTEX): true, strconv.Itoa(unix.SYS_EPOLL_PWAIT): true,
	strconv.Itoa(unix.SYS_NANOSLEEP): true, strconv.Itoa(unix.SYS_CLOCK_NANOSLEEP): true,
}
