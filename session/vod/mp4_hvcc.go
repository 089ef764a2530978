package vod

import (
	"encoding/binary"
	"fmt"
)

// checkHEVCConfigs walks a moov box (its bytes, header included) down to
// the HEVC decoder configuration records of its sample entries and checks
// that the NAL unit arrays each record declares fit in its box. mp4ff's
// decoder trusts the declared counts: past the end of the box it goes on
// appending empty NAL units, up to 255 arrays of 65,535 each, so a few
// bytes of hvcC made it allocate megabytes (up to about 400 MB) and spin
// (a FuzzMP4 find). The walk is bounded by the moov's size and depth.
func checkHEVCConfigs(moov []byte) error {
	return walkBoxes(moov, 0)
}

// The boxes the walk enters, and where their children start (after the
// box header): sample descriptions have a version, flags and an entry
// count; visual sample entries 78 bytes of fields.
var hevcWalk = map[string]int{
	"moov": 0, "trak": 0, "mdia": 0, "minf": 0, "stbl": 0,
	"stsd": 8,
	"hvc1": 78, "hev1": 78, "dvh1": 78, "dvhe": 78, "encv": 78,
}

// maxBoxDepth bounds the walk: moov/trak/mdia/minf/stbl/stsd/hvc1/hvcC.
const maxBoxDepth = 10

func walkBoxes(b []byte, depth int) error {
	if depth > maxBoxDepth {
		return nil
	}
	for len(b) >= 8 {
		size := uint64(binary.BigEndian.Uint32(b))
		typ := string(b[4:8])
		hdr := 8
		switch size {
		case 0:
			size = uint64(len(b))
		case 1:
			if len(b) < 16 {
				return nil // mp4ff refuses what is left
			}
			size = binary.BigEndian.Uint64(b[8:16])
			hdr = 16
		}
		if size < uint64(hdr) || size > uint64(len(b)) {
			return nil // mp4ff refuses a box that overruns its parent
		}
		box := b[hdr:size]
		if typ == "hvcC" {
			if err := checkHVCC(box); err != nil {
				return err
			}
		} else if skip, ok := hevcWalk[typ]; ok && len(box) >= skip {
			if err := walkBoxes(box[skip:], depth+1); err != nil {
				return err
			}
		}
		b = b[size:]
	}
	return nil
}

// checkHVCC checks that the NAL unit arrays of an HEVC decoder
// configuration record (ISO/IEC 14496-15 8.3.3.1) fit in p.
func checkHVCC(p []byte) error {
	const fixed = 23 // the fields up to and including numOfArrays
	if len(p) < fixed {
		return nil // mp4ff reports the short record itself
	}
	pos := fixed
	for a := range int(p[fixed-1]) {
		if pos+3 > len(p) {
			return fmt.Errorf("%w: hvcC declares %d NAL unit arrays, its box ends in array %d", ErrBadMP4, p[fixed-1], a)
		}
		n := int(binary.BigEndian.Uint16(p[pos+1:]))
		pos += 3
		for i := range n {
			if pos+2 > len(p) {
				return fmt.Errorf("%w: hvcC array %d declares %d NAL units, its box ends in unit %d", ErrBadMP4, a, n, i)
			}
			pos += 2 + int(binary.BigEndian.Uint16(p[pos:]))
			if pos > len(p) {
				return fmt.Errorf("%w: hvcC array %d: NAL unit %d passes the end of its box", ErrBadMP4, a, i)
			}
		}
	}
	return nil
}
