package slack

import (
	"os"
	"slices"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The manifest at the root must match what this package handles and needs.
func TestManifestMatchesTheCode(t *testing.T) {
	b, err := os.ReadFile("../../manifest.yml")
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Features struct {
			AppHome struct {
				Home     bool `yaml:"home_tab_enabled"`
				Messages bool `yaml:"messages_tab_enabled"`
				ReadOnly bool `yaml:"messages_tab_read_only_enabled"`
			} `yaml:"app_home"`
			BotUser struct {
				DisplayName string `yaml:"display_name"`
			} `yaml:"bot_user"`
			SlashCommands []struct {
				Command      string `yaml:"command"`
				ShouldEscape bool   `yaml:"should_escape"`
			} `yaml:"slash_commands"`
		} `yaml:"features"`
		OAuth struct {
			Scopes struct {
				Bot []string `yaml:"bot"`
			} `yaml:"scopes"`
		} `yaml:"oauth_config"`
		Settings struct {
			Events struct {
				Bot []string `yaml:"bot_events"`
			} `yaml:"event_subscriptions"`
			Interactivity struct {
				Enabled bool   `yaml:"is_enabled"`
				Options string `yaml:"message_menu_options_url"`
			} `yaml:"interactivity"`
			SocketMode bool `yaml:"socket_mode_enabled"`
		} `yaml:"settings"`
	}
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	f := m.Features
	if len(f.SlashCommands) != 1 || f.SlashCommands[0].Command != "/activate" || f.SlashCommands[0].ShouldEscape {
		t.Errorf("slash commands %+v: want /activate with should_escape false (the quick form reads plain text)", f.SlashCommands)
	}
	if !f.AppHome.Home || !f.AppHome.Messages || f.AppHome.ReadOnly || f.BotUser.DisplayName == "" {
		t.Errorf("app home %+v, bot user %q: the Home tab and a writable Messages tab are used", f.AppHome, f.BotUser.DisplayName)
	}
	scopes := slices.Sorted(slices.Values(m.OAuth.Scopes.Bot))
	if want := []string{"channels:history", "chat:write", "commands", "groups:history", "im:history", "im:write", "users:read", "users:read.email"}; !slices.Equal(scopes, want) {
		t.Errorf("bot scopes %v, want exactly %v", scopes, want)
	}
	events := slices.Sorted(slices.Values(m.Settings.Events.Bot))
	if want := []string{"app_home_opened", "message.im"}; !slices.Equal(events, want) {
		t.Errorf("bot events %v, want %v", events, want)
	}
	if !m.Settings.Interactivity.Enabled || m.Settings.Interactivity.Options != "" {
		t.Errorf("interactivity %+v: enabled, with no options load URL (the forms use static selects)", m.Settings.Interactivity)
	}
	if !m.Settings.SocketMode {
		t.Error("socket_mode_enabled should be true as shipped")
	}
}
