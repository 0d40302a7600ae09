package bencode

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"strconv"

	bgo "github.com/jackpal/bencode-go"
)

// Decode decodes data, which must be exactly one value within the bounds,
// into int64, string, []any and map[string]any.
func Decode(data []byte) (any, error) {
	if err := Check(data); err != nil {
		return nil, err
	}
	// The scan bounded every length and the nesting, so bencode-go cannot be
	// made to allocate wildly or recurse deeply.
	v, err := bgo.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, &SyntaxError{Msg: err.Error()}
	}
	return v, nil
}

// Unmarshal decodes data, which must be exactly one value within the
// bounds, into v, a pointer to a struct, map or slice. Keys without a field
// are ignored; a value of the wrong type for its field is an error. Maps of
// integers must be map[string]int: bencode-go builds map values as int.
func Unmarshal(data []byte, v any) error {
	if err := Check(data); err != nil {
		return err
	}
	return unmarshalChecked(data, v)
}

// UnmarshalPrefix decodes the value at the start of data into v and returns
// what follows it: a BEP 9 data message is a dictionary and then raw bytes.
func UnmarshalPrefix(data []byte, v any) (rest []byte, err error) {
	n, err := Scan(data)
	if err != nil {
		return nil, err
	}
	if err := unmarshalChecked(data[:n], v); err != nil {
		return nil, err
	}
	return data[n:], nil
}

func unmarshalChecked(data []byte, v any) (err error) {
	if rv := reflect.ValueOf(v); rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("bencode: Unmarshal needs a non-nil pointer, not %T", v)
	}
	// bencode-go panics when an integer meets a field that is not a number.
	defer func() {
		if r := recover(); r != nil {
			err = &SyntaxError{Msg: fmt.Sprintf("a value does not fit its field: %v", r)}
		}
	}()
	if err := bgo.Unmarshal(bytes.NewReader(data), v); err != nil {
		return &SyntaxError{Msg: err.Error()}
	}
	return nil
}

// Marshal encodes v: integers, strings, []byte, slices, maps with string
// keys (written in sorted order) and structs (fields by name or tag,
// `bencode:"key,omitempty"`).
func Marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	if err := bgo.Marshal(&b, v); err != nil {
		return nil, fmt.Errorf("bencode: %w", err)
	}
	return b.Bytes(), nil
}

// AppendDict appends a dictionary whose values are already encoded, keys in
// sorted order: how a torrent is written around an info dictionary that must
// keep its exact bytes.
func AppendDict(dst []byte, fields map[string][]byte) []byte {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	dst = append(dst, 'd')
	for _, k := range keys {
		dst = strconv.AppendInt(dst, int64(len(k)), 10)
		dst = append(dst, ':')
		dst = append(dst, k...)
		dst = append(dst, fields[k]...)
	}
	return append(dst, 'e')
}
