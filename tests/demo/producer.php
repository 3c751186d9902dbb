<?php
// A SCADA producer for the demo: 16 PLCs x 6 tags, paced at RATE samples/s
// for SECONDS, through the extension; progress in a small JSON file.
// usage: php -d extension=... producer.php RATE SECONDS PROGRESS_FILE
[$_, $rate, $seconds, $progress] = $argv;
$rate = (int)$rate; $seconds = (float)$seconds;
$s = new Scada\Broadcasting\ScadaBroadcastingService();
$tags = ['temperature' => 'C', 'pressure' => 'bar', 'flow' => 'm3/h', 'level' => '%', 'vibration' => 'mm/s', 'power' => 'kW'];
$tagNames = array_keys($tags);
$t0 = microtime(true);
$sent = 0; $refused = 0; $lastWrite = 0;
$tick = 0.01;
while (($now = microtime(true)) - $t0 < $seconds) {
    $due = (int)(($now - $t0) * $rate);
    while ($sent + $refused < $due) {
        $i = $sent + $refused;
        $plc = $i % 16;
        $tag = $tagNames[intdiv($i, 16) % 6];
        $sample = ['id' => $i, 'channel' => "PLC-$plc", 'tag' => $tag, 'value' => round(50 + 25 * sin($i / 500 + $plc), 3),
            'unit' => $tags[$tag], 'quality' => 'good', 'sent_us' => (int)(microtime(true) * 1e6)];
        $s->broadcastData($sample, 'scada-realtime') ? $sent++ : $refused++;
    }
    if ($now - $lastWrite > 0.2) {
        file_put_contents($progress, json_encode(['sent' => $sent, 'refused' => $refused, 'done' => false]));
        $lastWrite = $now;
    }
    usleep((int)($tick * 1e6));
}
$s->flush();
$st = $s->stats();
file_put_contents($progress, json_encode(['sent' => $sent, 'refused' => $refused, 'done' => true, 'stats' => $st]));
