// Package pimbot holds what the binary embeds from the repository root.
package pimbot

import _ "embed"

// ExamplePolicy is pimbot.example.yaml, used when no policy file is given.
//
//go:embed pimbot.example.yaml
var ExamplePolicy []byte
