// Command hello is the smallest agent: it greets, lists its arguments and exits 0. Build it
// for the sandbox with GOOS=wasip1 GOARCH=wasm (make examples).
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Println("hello from an agent inside agentbox")
	for i, a := range os.Args[1:] {
		fmt.Printf("arg %d: %s\n", i+1, a)
	}
}
