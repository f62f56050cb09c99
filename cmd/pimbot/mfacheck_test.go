package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
)

// `pimbot check` says which step-up mode is in force and refuses require_mfa that no real
// Entra sign-in can satisfy (no authentication context: v2.0 ID tokens carry no amr).
func TestCheck_MFAMode(t *testing.T) {
	path := t.TempDir() + "/pimbot.yaml"
	policy := strings.Replace(restartPolicy, "    min_duration: 1m\n", "    min_duration: 1m\n    require_mfa: true\n", 1)
	if err := os.WriteFile(path, []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, context string
		code          int
		want          string
	}{
		{"no context", "", 1, "FAIL  mfa: prod-db-admins require MFA, but ENTRA_AUTH_CONTEXT is not set"},
		{"context", "c1", 0, "ok    mfa: authentication context mode: a sign-in proves MFA when Entra names the context c1 in acrs"},
	} {
		t.Run(c.name, func(t *testing.T) {
			getenv := testEnv(t, map[string]string{"PIMBOT_CONFIG": path, "PIMBOT_DIRECTORY": "local",
				"AZURE_TENANT_ID": "contoso.onmicrosoft.com", "AZURE_CLIENT_ID": "11111111-2222-3333-4444-555555555555",
				"PIMBOT_PUBLIC_URL": "https://pimbot.example.com", "ENTRA_AUTH_CONTEXT": c.context})
			var out, errs bytes.Buffer
			code := run(context.Background(), []string{"check"}, getenv, nil, &out, &errs)
			if code != c.code || !strings.Contains(out.String(), c.want) {
				t.Fatalf("exit %d, want %d; output:\n%s%s", code, c.code, out.String(), errs.String())
			}
		})
	}
}
