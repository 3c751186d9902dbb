<?php
// The cost of a drop_oldest call that evicts (README, Reliability): no sidecar
// and a spool directory that cannot be created (under a regular file), so
// nothing leaves the buffer; an 8 MiB (or argv[1] bytes) buffer of drop_oldest
// events is filled, then every call evicts one.
//   php -n -d extension=target/release/libscada_broadcast.so ext/tests/bench/evict.php [BUFFER_BYTES]
use Scada\Broadcasting\ScadaBroadcastingService as S;

$dir = sys_get_temp_dir() . '/scada-evict-' . getmypid();
@mkdir($dir);
touch("$dir/notadir");
register_shutdown_function(fn () => @unlink("$dir/notadir") && @rmdir($dir));
$buf = (int)($argv[1] ?? 8 << 20);
$s = new S(['socket' => "$dir/none.sock", 'spool_dir' => "$dir/notadir/spool",
    'buffer_bytes' => $buf, 'overflow' => 'drop_oldest', 'linger_us' => 100, 'shutdown_timeout_ms' => 100]);
$payload = ['v' => 1.5, 'tag' => 'sensor-0042'];
$s->broadcastData($payload);
usleep(200000);
while ($s->stats()['dropped_evicted'] === 0) { $s->broadcastData($payload); }
$n = 200000; $t = [];
for ($i = 0; $i < $n; $i++) { $a = hrtime(true); $s->broadcastData($payload); $t[] = hrtime(true) - $a; }
sort($t);
$st = $s->stats();
printf("buffer %d: p50 %.2f us p99 %.2f us max %.1f us; evicted %d buffered %d no_destination %d\n", $buf,
    $t[$n/2]/1000, $t[(int)($n*0.99)]/1000, end($t)/1000, $st['dropped_evicted'], $st['buffered'], $st['no_destination']);
