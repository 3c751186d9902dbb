<?php
// Helpers shared by the scripts: read back what this process spooled.

/**
 * Every frame in this process's spool files, decoded:
 * list of ['kind' => 'event'|'samples', 'origin' => hex, 'seq' => int, 'channels' => [...], 'event' => string, 'payload' => string].
 */
function spooled_frames(?string $dir = null): array
{
    $dir ??= getenv('SCADA_SPOOL_DIR');
    $out = [];
    foreach (glob("$dir/*.spool") as $file) {
        $bytes = file_get_contents($file);
        if (substr($bytes, 0, 8) !== 'SCADASPL') {
            throw new RuntimeException("$file: bad header");
        }
        for ($at = 16; $at < strlen($bytes);) {
            $len = unpack('Vlen', substr($bytes, $at, 4))['len'];
            $body = substr($bytes, $at + 8, $len);
            if (strlen($body) !== $len) {
                throw new RuntimeException("$file: torn frame at $at");
            }
            $at += 8 + $len;
            $kind = ord($body[1]);
            $p = 2;
            $origin = bin2hex(strrev(substr($body, $p, 8)));
            $seq = unpack('P', substr($body, $p + 8, 8))[1];
            $frame = ['kind' => $kind === 3 ? 'event' : ($kind === 5 ? 'samples' : "kind$kind"), 'origin' => $origin, 'seq' => $seq];
            if ($kind === 3) {
                $p += 25; // origin, seq, created, flags
                $n = ord($body[$p++]);
                $channels = [];
                for ($i = 0; $i < $n; $i++) {
                    $l = ord($body[$p++]);
                    $channels[] = substr($body, $p, $l);
                    $p += $l;
                }
                $el = unpack('v', substr($body, $p, 2))[1];
                $event = substr($body, $p + 2, $el);
                $p += 2 + $el;
                $sl = ord($body[$p++]);
                $p += $sl;
                $pl = unpack('V', substr($body, $p, 4))[1];
                $frame += ['channels' => $channels, 'event' => $event, 'payload' => substr($body, $p + 4, $pl)];
            }
            $out[] = $frame;
        }
    }
    return $out;
}

/** Fails the script with a message on stderr. */
function fail(string $why): never
{
    fwrite(STDERR, $why . "\n");
    exit(1);
}

/** `$call` must throw `$class` whose message contains `$fragment`. */
function expect_throw(string $label, callable $call, string $class, string $fragment = ''): Throwable
{
    try {
        $call();
    } catch (Throwable $e) {
        if (!($e instanceof $class) || !str_contains($e->getMessage(), $fragment)) {
            fail("$label: got " . get_class($e) . ': ' . $e->getMessage() . "\n  want $class containing: $fragment");
        }
        return $e;
    }
    fail("$label: no exception");
}
