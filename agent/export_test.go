package agent

// SetSignaler makes s the agent's way to the Manager, as Run does with its
// client: its reports (watch) go to s.
func SetSignaler(a *Agent, s Signaler) { a.client = s }
