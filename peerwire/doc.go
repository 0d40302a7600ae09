// Package peerwire speaks the BitTorrent peer wire protocol (BEP 3): the
// 68-byte handshake, length-prefixed messages, and a Conn that bounds message
// sizes and puts a deadline on every read and write.
package peerwire
