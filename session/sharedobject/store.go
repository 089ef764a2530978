package sharedobject

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/rtmphub/rtmphub/rtmp/amf"
	"github.com/rtmphub/rtmphub/session/internal/confine"
)

// Persistent shared objects live in
// <DataDir>/<app>/sharedobjects/<instance>/<name>.fso, one file each, in
// this format (integers big-endian):
//
//	"RHSO" 0x01                 magic and format version
//	u32 version                 the object's version
//	u32 count                   slots
//	count × {
//	  u16 key length, key       UTF-8
//	  u8  encoding              0 = AMF0 (AMF3 types behind AVM+ switches), 3 = AMF3
//	  u32 value length, value   the AMF-encoded value
//	}
//	u32 CRC-32 (IEEE) of everything before it
//
// Values are kept in the encoding they arrived in, so that every AMF type
// (an AMF3 Vector or ByteArray, an AMF0 ECMA array) reads back as itself.
// A file is replaced by writing a temporary file in the same folder,
// fsyncing it, renaming it over the old one and fsyncing the folder: a
// crash at any moment leaves the old or the new file, never a mix.

const soFileMagic = "RHSO\x01"

// path is the file of persistent object name.
func (r *Registry) path(name string) string {
	return filepath.Join(r.cfg.DataDir, r.app, "sharedobjects", filepath.FromSlash(r.instance), filepath.FromSlash(name)+".fso")
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// confined checks that the object's file, through any symbolic links on
// the way (a linked sharedobjects/<instance> folder), stays in the data
// folder: the rule of recordings (confine.Path). The error names the link.
func (so *Object) confined() error {
	_, err := confine.Path(so.reg.cfg.DataDir, so.path)
	return err
}

// load reads the object's file, if any; leftover temporary files of an
// interrupted save are removed.
func (so *Object) load() error {
	if err := so.confined(); err != nil {
		if errors.Is(err, fs.ErrNotExist) { // no data folder yet: no file
			return nil
		}
		return err
	}
	dir, base := filepath.Split(so.path)
	if tmps, _ := filepath.Glob(filepath.Join(dir, "."+base+".tmp*")); len(tmps) > 0 {
		for _, t := range tmps {
			os.Remove(t)
		}
	}
	b, err := os.ReadFile(so.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := so.loadData(b); err != nil {
		return fmt.Errorf("%s: %w", so.path, err)
	}
	return nil
}

// loadData sets the object to its encoded state b (nil: none).
func (so *Object) loadData(b []byte) error {
	if b == nil {
		return nil
	}
	ver, props, err := decodeSOFile(b)
	if err != nil {
		return err
	}
	so.version, so.savedVer, so.saved = ver, ver, true
	for k, v := range props {
		so.props[k] = v
		so.size += len(k) + len(v.raw)
	}
	return nil
}

var errSOFile = errors.New("not a valid shared object file")

func decodeSOFile(b []byte) (uint32, map[string]soValue, error) {
	if len(b) < len(soFileMagic)+12 || string(b[:len(soFileMagic)]) != soFileMagic {
		return 0, nil, errSOFile
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return 0, nil, fmt.Errorf("%w: checksum mismatch", errSOFile)
	}
	p := body[len(soFileMagic):]
	ver := binary.BigEndian.Uint32(p)
	n := binary.BigEndian.Uint32(p[4:])
	p = p[8:]
	props := make(map[string]soValue)
	for i := uint32(0); i < n; i++ {
		if len(p) < 2 {
			return 0, nil, errSOFile
		}
		kl := int(binary.BigEndian.Uint16(p))
		if len(p) < 2+kl+5 {
			return 0, nil, errSOFile
		}
		key := string(p[2 : 2+kl])
		enc := p[2+kl]
		vl := binary.BigEndian.Uint32(p[3+kl:])
		p = p[7+kl:]
		if uint64(vl) > uint64(len(p)) || (enc != 0 && enc != 3) {
			return 0, nil, errSOFile
		}
		raw := append([]byte(nil), p[:vl]...)
		p = p[vl:]
		d := amf.NewDecoder(raw)
		var v any
		var err error
		if enc == 3 {
			v, err = d.DecodeAMF3()
		} else {
			v, err = d.DecodeAMF0()
		}
		if err != nil {
			return 0, nil, fmt.Errorf("%w: slot %q: %v", errSOFile, key, err) //nolint:errorlint // errSOFile is the kind; the decoder's error is detail
		}
		props[key] = soValue{v: v, raw: raw, amf3: enc == 3}
	}
	if len(p) != 0 {
		return 0, nil, errSOFile
	}
	return ver, props, nil
}

// snapshotLocked encodes the object's file.
func (so *Object) snapshotLocked() []byte {
	b := make([]byte, 0, len(soFileMagic)+12+so.size+len(so.props)*7)
	b = append(b, soFileMagic...)
	b = binary.BigEndian.AppendUint32(b, so.version)
	b = binary.BigEndian.AppendUint32(b, uint32(len(so.props)))
	for _, k := range so.sortedKeysLocked() {
		v := so.props[k]
		b = binary.BigEndian.AppendUint16(b, uint16(len(k)))
		b = append(b, k...)
		if v.amf3 {
			b = append(b, 3)
		} else {
			b = append(b, 0)
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(v.raw)))
		b = append(b, v.raw...)
	}
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
}

// saveNow writes the object if it changed since it was last written.
func (so *Object) saveNow() error {
	so.saveMu.Lock()
	defer so.saveMu.Unlock()
	so.mu.Lock()
	if !so.dirty {
		so.mu.Unlock()
		return nil
	}
	ver := so.version
	data := so.snapshotLocked()
	so.dirty = false
	so.mu.Unlock()

	var err error
	if st := so.reg.cfg.Store; st != nil {
		err = st.Save(so.reg.app, so.reg.instance, so.name, data)
	} else {
		err = os.MkdirAll(so.reg.cfg.DataDir, 0o755)
		if err == nil {
			err = so.confined()
		}
		if err == nil {
			err = writeFileAtomic(so.path, data)
		}
	}
	if err != nil {
		so.mu.Lock()
		so.dirty = true
		so.mu.Unlock()
		so.reg.log.Error("saving shared object", "app", so.reg.app, "instance", so.reg.instance, "so", so.name, "err", err.Error())
		return err
	}
	so.saved, so.savedVer = true, ver
	return nil
}

// writeFileAtomic replaces path with data: temporary file, fsync, rename,
// fsync of the folder.
func writeFileAtomic(path string, data []byte) error {
	dir, base := filepath.Split(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if d, err := os.Open(strings.TrimSuffix(dir, string(filepath.Separator))); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
