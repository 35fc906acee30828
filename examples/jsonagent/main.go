// Command jsonagent is a JSON-in/JSON-out agent: it reads a task such as
// {"op":"sum","numbers":[1,2,3]} on stdin and writes {"op":"sum","result":6} on stdout.
// Bad input gets a JSON error on stdout and exit code 1.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
)

type task struct {
	Op      string    `json:"op"`
	Numbers []float64 `json:"numbers"`
}

type answer struct {
	Op     string  `json:"op"`
	Result float64 `json:"result"`
	Count  int     `json:"count"`
}

func main() {
	var t task
	if err := json.NewDecoder(os.Stdin).Decode(&t); err != nil {
		fail(fmt.Sprintf("bad task: %v", err))
	}
	r, err := solve(t)
	if err != nil {
		fail(err.Error())
	}
	json.NewEncoder(os.Stdout).Encode(answer{Op: t.Op, Result: r, Count: len(t.Numbers)})
}

func solve(t task) (float64, error) {
	if len(t.Numbers) == 0 {
		return 0, fmt.Errorf("op %q needs at least one number", t.Op)
	}
	switch t.Op {
	case "sum":
		var s float64
		for _, n := range t.Numbers {
			s += n
		}
		return s, nil
	case "max":
		return slices.Max(t.Numbers), nil
	case "min":
		return slices.Min(t.Numbers), nil
	}
	return 0, fmt.Errorf("unknown op %q; want sum, max or min", t.Op)
}

func fail(msg string) {
	json.NewEncoder(os.Stdout).Encode(map[string]string{"error": msg})
	os.Exit(1)
}
