//go:build !linux

package cgroups

import "os"

// Manager is unavailable off Linux; NewManager says so.
type Manager struct{}

// NewManager returns ErrUnsupported: cgroups exist only on Linux.
func NewManager() (*Manager, error) { return nil, ErrUnsupported }

// Mode is never reached off Linux (NewManager fails); it returns 0.
func (m *Manager) Mode() Mode { return 0 }

// Create returns ErrUnsupported.
func (m *Manager) Create(string, Limits) (*Group, error) { return nil, ErrUnsupported }

// Close does nothing: there is nothing to undo off Linux.
func (m *Manager) Close() error { return nil }

// Sweep returns ErrUnsupported.
func (m *Manager) Sweep() ([]string, error) { return nil, ErrUnsupported }

// Group is unavailable off Linux.
type Group struct{}

// Name returns "".
func (g *Group) Name() string { return "" }

// AddProc returns ErrUnsupported.
func (g *Group) AddProc(int) error { return ErrUnsupported }

// OpenDir returns ErrUnsupported.
func (g *Group) OpenDir() (*os.File, error) { return nil, ErrUnsupported }

// SetLimits returns ErrUnsupported.
func (g *Group) SetLimits(Limits) error { return ErrUnsupported }

// Stats returns ErrUnsupported.
func (g *Group) Stats() (Stats, error) { return Stats{}, ErrUnsupported }

// Procs returns ErrUnsupported.
func (g *Group) Procs() ([]int, error) { return nil, ErrUnsupported }

// Kill returns ErrUnsupported.
func (g *Group) Kill() error { return ErrUnsupported }

// Delete returns ErrUnsupported.
func (g *Group) Delete() error { return ErrUnsupported }

// Owned fails: there are no cgroups off Linux.
func (m *Manager) Owned() ([]string, error) { return nil, ErrUnsupported }
