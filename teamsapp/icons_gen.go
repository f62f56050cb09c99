//go:build ignore

// icons_gen.go draws the Teams app icons: color.png (192x192, the accent color with a white
// key) and outline.png (32x32, the white key on transparency, as Teams requires).
// Run: go generate ./teamsapp
package main

import (
	"image"
	"image/color"
	"image/png"
	"log"
	"math"
	"os"
)

var accent = color.RGBA{0x44, 0x64, 0xee, 0xff}

// key reports whether (x, y) in unit coordinates (0..1) is on the key: a ring (the bow), a
// shaft, and two teeth.
func key(x, y float64) bool {
	cx, cy := 0.34, 0.5
	d := math.Hypot(x-cx, y-cy)
	if d <= 0.19 && d >= 0.09 {
		return true
	}
	if x >= 0.5 && x <= 0.84 && math.Abs(y-0.5) <= 0.045 {
		return true
	}
	for _, tx := range []float64{0.70, 0.80} {
		if math.Abs(x-tx) <= 0.035 && y >= 0.5 && y <= 0.66 {
			return true
		}
	}
	return false
}

// draw renders the key with 4x4 supersampling; bg is the background (transparent for the outline).
func draw(size int, bg color.RGBA, path string) {
	img := image.NewRGBA(image.Rect(0, 0, size, size))
	const ss = 4
	for py := 0; py < size; py++ {
		for px := 0; px < size; px++ {
			hits := 0
			for sy := 0; sy < ss; sy++ {
				for sx := 0; sx < ss; sx++ {
					if key((float64(px)+(float64(sx)+0.5)/ss)/float64(size), (float64(py)+(float64(sy)+0.5)/ss)/float64(size)) {
						hits++
					}
				}
			}
			a := float64(hits) / ss / ss
			mix := func(b uint8) uint8 { return uint8(float64(b)*(1-a) + 255*a) }
			if bg.A == 0 {
				img.SetRGBA(px, py, color.RGBA{uint8(255 * a), uint8(255 * a), uint8(255 * a), uint8(255 * a)}) // premultiplied white
			} else {
				img.SetRGBA(px, py, color.RGBA{mix(bg.R), mix(bg.G), mix(bg.B), 0xff})
			}
		}
	}
	f, err := os.Create(path)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		log.Fatal(err)
	}
}

func main() {
	draw(192, accent, "color.png")
	draw(32, color.RGBA{}, "outline.png")
}
