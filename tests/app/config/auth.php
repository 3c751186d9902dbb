<?php

// Authentication by request header (X-User: <id>): the test app has no database.
return [
    'defaults' => ['guard' => 'web'],
    'guards' => ['web' => ['driver' => 'test-header']],
    'providers' => [],
];
