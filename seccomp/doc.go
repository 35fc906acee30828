// Package seccomp holds the syscall allowlist of the sandboxed child and the
// two halves of its life: Compile, which runs once in the supervisor and turns
// the Policy into classic BPF with libseccomp, and Load, which runs in the
// child and installs those bytes with the raw seccomp(2) syscall.
//
// The split exists so the child links no C library code on its hot path and
// the compile cost is paid once per supervisor, not once per task: the bytes
// travel to the child inside the spawn spec and are checked with Validate
// before Load.
//
// The policy is data (see Default): one table, a reason per entry. Anything the
// table does not name fails with ENOSYS, the answer a kernel gives for a
// syscall it does not know, so libraries fall back the way they would on an
// older kernel. Deliberate denials answer EPERM. Calls that only an escape
// attempt would make, and every foreign ABI (i386 via int 0x80, x32), kill the
// whole process.
package seccomp
