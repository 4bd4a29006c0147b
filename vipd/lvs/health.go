package lvs

import "fmt"

// State is the health of a real server as the checkers see it.
type State uint8

// Health states. The zero value is [Up]: a real server starts up, as in
// keepalived (without "alpha").
const (
	// Up: the real server is in the pool with its weight.
	Up State = iota
	// Down: the checks fail. The real server is removed, or kept with
	// weight 0 when inhibit_on_failure is set.
	Down
	// Drain: healthy, but taken out of rotation by an operator: weight 0,
	// so that established connections finish and new ones go elsewhere.
	Drain
)

func (s State) String() string {
	switch s {
	case Up:
		return "up"
	case Down:
		return "down"
	case Drain:
		return "drain"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Status is what [FromConfig] is told about one real server.
type Status struct {
	State State
	// Weight replaces the configured weight when WeightSet is true: the
	// weight a MISC_CHECK with misc_dynamic reported (exit status - 2).
	Weight    int
	WeightSet bool
}

// WithWeight returns an [Up] status with a dynamic weight.
func WithWeight(w int) Status { return Status{State: Up, Weight: w, WeightSet: true} }
