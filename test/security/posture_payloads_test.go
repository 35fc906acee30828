package security

import "github.com/agentbox/agentbox/sandbox"

// posturePayloads: payloads the posture and crash tests inspect from outside.
var posturePayloads = map[string]sandbox.Payload{}
