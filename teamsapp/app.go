// Package teamsapp holds the Microsoft Teams app package's sources (manifest.json and the two
// icons), embedded so that `pimbot teams-package` works from anywhere, and builds the zip
// that Teams Admin Center uploads.
package teamsapp

import (
	"archive/zip"
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"io/fs"
	"regexp"
	"strings"
	"time"
)

//go:generate go run icons_gen.go

// Files are manifest.json, color.png (192x192) and outline.png (32x32).
//
//go:embed manifest.json color.png outline.png
var Files embed.FS

// AppIDPlaceholder is replaced by the bot's Microsoft App ID in the manifest.
const AppIDPlaceholder = "{{MICROSOFT_APP_ID}}"

var guidRe = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

var versionRe = regexp.MustCompile(`^\d{1,5}\.\d{1,5}\.\d{1,5}$`)

// Options of a package.
type Options struct {
	AppID   string // the Azure Bot's Microsoft App ID (also the Teams app id)
	Version string // the app version (x.y.z); empty keeps the manifest's
}

// Package writes the app zip from src (Files, or a directory with the same three files):
// the manifest with the app id filled in, and the icons, checked for Teams' sizes.
func Package(w io.Writer, src fs.FS, o Options) error {
	if !guidRe.MatchString(o.AppID) {
		return fmt.Errorf("app id %q: want the Azure Bot's Microsoft App ID (a GUID)", o.AppID)
	}
	raw, err := fs.ReadFile(src, "manifest.json")
	if err != nil {
		return fmt.Errorf("read manifest.json: %w", err)
	}
	if !bytes.Contains(raw, []byte(AppIDPlaceholder)) {
		return fmt.Errorf("manifest.json has no %s placeholder to fill", AppIDPlaceholder)
	}
	raw = bytes.ReplaceAll(raw, []byte(AppIDPlaceholder), []byte(strings.ToLower(o.AppID)))
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("manifest.json: %w", err)
	}
	if o.Version != "" {
		if !versionRe.MatchString(o.Version) {
			return fmt.Errorf("version %q: want x.y.z", o.Version)
		}
		m["version"] = o.Version
	}
	if err := checkManifest(m); err != nil {
		return err
	}
	manifest, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	files := map[string][]byte{"manifest.json": manifest}
	icons := map[string]int{"color.png": 192, "outline.png": 32}
	for name, size := range icons {
		b, err := fs.ReadFile(src, name)
		if err != nil {
			return fmt.Errorf("read %s: %w", name, err)
		}
		cfg, err := png.DecodeConfig(bytes.NewReader(b))
		if err != nil {
			return fmt.Errorf("%s: not a PNG: %w", name, err)
		}
		if cfg.Width != size || cfg.Height != size {
			return fmt.Errorf("%s is %dx%d; Teams wants %dx%d", name, cfg.Width, cfg.Height, size, size)
		}
		files[name] = b
	}
	zw := zip.NewWriter(w)
	for _, name := range []string{"manifest.json", "color.png", "outline.png"} {
		fw, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
		if err != nil {
			return err
		}
		if _, err := fw.Write(files[name]); err != nil {
			return err
		}
	}
	return zw.Close()
}

// checkManifest checks what Teams Admin Center would refuse: one bot, its id, the icons,
// command lists within Teams' limits.
func checkManifest(m map[string]any) error {
	id, _ := m["id"].(string)
	if !guidRe.MatchString(id) {
		return fmt.Errorf("manifest.json: id %q is not a GUID", id)
	}
	bots, _ := m["bots"].([]any)
	if len(bots) != 1 {
		return fmt.Errorf("manifest.json: want exactly one bot, found %d", len(bots))
	}
	b, _ := bots[0].(map[string]any)
	if botID, _ := b["botId"].(string); !guidRe.MatchString(botID) {
		return fmt.Errorf("manifest.json: bots[0].botId %q is not a GUID", botID)
	}
	lists, _ := b["commandLists"].([]any)
	if len(lists) > 2 {
		return fmt.Errorf("manifest.json: at most 2 command lists, found %d", len(lists))
	}
	for _, l := range lists {
		cmds, _ := l.(map[string]any)["commands"].([]any)
		if len(cmds) > 10 {
			return fmt.Errorf("manifest.json: at most 10 commands per list, found %d", len(cmds))
		}
		for _, c := range cmds {
			cm, _ := c.(map[string]any)
			t, _ := cm["title"].(string)
			d, _ := cm["description"].(string)
			if t == "" || len(t) > 32 || len(d) > 128 {
				return fmt.Errorf("manifest.json: command %q: title 1-32 characters, description at most 128", t)
			}
		}
	}
	if icons, _ := m["icons"].(map[string]any); icons["color"] != "color.png" || icons["outline"] != "outline.png" {
		return fmt.Errorf("manifest.json: icons must be color.png and outline.png")
	}
	return nil
}
