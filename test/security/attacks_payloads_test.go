package security

import "github.com/agentbox/agentbox/sandbox"

// attackPayloads: native attacks run in place of wazero (filled in by the attack suite).
var attackPayloads = map[string]sandbox.Payload{}
