package teamsapp

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"image/png"
	"io"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
)

func TestPackage(t *testing.T) {
	const id = "6F1C2A3B-0000-4000-8000-00000000B0B0"
	var buf bytes.Buffer
	if err := Package(&buf, Files, Options{AppID: id, Version: "1.2.3"}); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
		rc, _ := f.Open()
		b, _ := io.ReadAll(rc)
		rc.Close()
		switch f.Name {
		case "manifest.json":
			var m struct {
				ID      string `json:"id"`
				Version string `json:"version"`
				Bots    []struct {
					BotID  string   `json:"botId"`
					Scopes []string `json:"scopes"`
				} `json:"bots"`
			}
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			lower := strings.ToLower(id)
			if m.ID != lower || m.Bots[0].BotID != lower || m.Version != "1.2.3" || strings.Contains(string(b), "{{") {
				t.Fatalf("manifest: id %s, bot %s, version %s", m.ID, m.Bots[0].BotID, m.Version)
			}
			if strings.Join(m.Bots[0].Scopes, ",") != "personal,team" {
				t.Fatalf("scopes %v", m.Bots[0].Scopes)
			}
		case "color.png", "outline.png":
			img, err := png.Decode(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]int{"color.png": 192, "outline.png": 32}[f.Name]
			if img.Bounds().Dx() != want || img.Bounds().Dy() != want {
				t.Fatalf("%s is %v", f.Name, img.Bounds())
			}
		}
	}
	if strings.Join(names, ",") != "manifest.json,color.png,outline.png" {
		t.Fatalf("zip holds %v", names)
	}
}

func TestPackage_Refusals(t *testing.T) {
	manifest, _ := Files.ReadFile("manifest.json")
	color, _ := Files.ReadFile("color.png")
	outline, _ := Files.ReadFile("outline.png")
	for _, tc := range []struct {
		name string
		src  fstest.MapFS
		o    Options
		want string
	}{
		{"no app id", nil, Options{}, "GUID"},
		{"bad version", nil, Options{AppID: "6f1c2a3b-0000-4000-8000-00000000b0b0", Version: "v1"}, "x.y.z"},
		{"icons swapped", fstest.MapFS{"manifest.json": {Data: manifest}, "color.png": {Data: outline}, "outline.png": {Data: color}}, Options{AppID: "6f1c2a3b-0000-4000-8000-00000000b0b0"}, "Teams wants"},
		{"no placeholder", fstest.MapFS{"manifest.json": {Data: []byte(`{"id":"x"}`)}, "color.png": {Data: color}, "outline.png": {Data: outline}}, Options{AppID: "6f1c2a3b-0000-4000-8000-00000000b0b0"}, "placeholder"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var src fs.FS = Files
			if tc.src != nil {
				src = tc.src
			}
			err := Package(io.Discard, src, tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}
