<?php
// A Redis PSUBSCRIBE client that keeps up with a firehose (buffered RESP
// parsing), so a slow subscriber is never the reason a message is missing.
//   php subscribe.php [HOST:]PORT PATTERN OUTFILE    one JSON line per message
//                                                     {"channel":..,"message":base64}
//   php subscribe.php PORT PATTERN STATSFILE --stats  count + latency (from "sent_us")
//   --reconnect: when Redis goes away, reconnect and subscribe again (a new "ready" line)
$port = $argv[1]; $pattern = $argv[2]; $out = $argv[3]; $statsMode = in_array('--stats', $argv, true);
$reconnect = in_array('--reconnect', $argv, true);
function subscribe_to(string $port, string $pattern, bool $retry)
{
    while (true) {
        $addr = str_contains($port, ':') ? $port : "127.0.0.1:$port";
        $s = @stream_socket_client("tcp://$addr", $errno, $err, 5);
        if ($s) {
            fwrite($s, "*2\r\n$10\r\nPSUBSCRIBE\r\n$" . strlen($pattern) . "\r\n$pattern\r\n");
            return $s;
        }
        if (!$retry) { fwrite(STDERR, "connect: $err\n"); exit(1); }
        usleep(50000);
    }
}
$s = subscribe_to($port, $pattern, false);
$fh = $statsMode ? null : fopen($out, 'a');
$buf = ''; $pos = 0;
$count = 0; $lat = []; $lastStats = 0.0;

function stats_write(string $file, int $count, array &$lat): void {
    sort($lat);
    $n = count($lat);
    file_put_contents("$file.tmp", json_encode(['ready' => true, 'count' => $count,
        'p50_ms' => $n ? $lat[intdiv($n, 2)] / 1000 : null, 'p99_ms' => $n ? $lat[(int)($n * .99)] / 1000 : null]));
    rename("$file.tmp", $file);
    $lat = [];
}

/** Parses one RESP value at $pos; null when more bytes are needed. */
function parse(string $buf, int &$pos) {
    $eol = strpos($buf, "\r\n", $pos);
    if ($eol === false) return null;
    $type = $buf[$pos]; $head = substr($buf, $pos + 1, $eol - $pos - 1);
    if ($type === '*') {
        $p = $eol + 2; $items = [];
        for ($i = 0, $n = (int)$head; $i < $n; $i++) {
            $v = parse($buf, $p);
            if ($v === null) return null;
            $items[] = $v;
        }
        $pos = $p; return $items;
    }
    if ($type === '$') {
        $n = (int)$head;
        if (strlen($buf) < $eol + 2 + $n + 2) return null;
        $pos = $eol + 2 + $n + 2; return substr($buf, $eol + 2, $n);
    }
    $pos = $eol + 2; return $head;
}

while (true) {
    // Wake at least every 0.2 s so the stats file is current even when idle.
    $r = [$s]; $w = $e = null;
    if (stream_select($r, $w, $e, 0, 200000) === 0) {
        if ($statsMode) { stats_write($out, $count, $lat); $lastStats = microtime(true); }
        continue;
    }
    $chunk = fread($s, 1 << 20);
    if ($chunk === false || ($chunk === '' && feof($s))) {
        if (!$reconnect) { break; }
        fclose($s);
        $s = subscribe_to($port, $pattern, true);
        $buf = ''; $pos = 0;
        continue;
    }
    $buf = substr($buf, $pos) . $chunk; $pos = 0;
    while (($v = parse($buf, $pos)) !== null) {
        if (!is_array($v)) continue;
        if ($v[0] === 'psubscribe') {
            $statsMode ? stats_write($out, 0, $lat) : fwrite($fh, "{\"ready\":true}\n");
        } elseif ($v[0] === 'pmessage') {
            $count++;
            if ($statsMode) {
                if (($i = strpos($v[3], '"sent_us":')) !== false) { $lat[] = microtime(true) * 1e6 - (int)substr($v[3], $i + 10, 20); }
            } else {
                fwrite($fh, json_encode(['channel' => $v[2], 'message' => base64_encode($v[3]), 'at' => microtime(true)]) . "\n");
            }
        }
    }
    if ($fh) { fflush($fh); }
    if ($statsMode && microtime(true) - $lastStats > 0.2) { stats_write($out, $count, $lat); $lastStats = microtime(true); }
}
if ($statsMode) { stats_write($out, $count, $lat); }
