<?php

require dirname(__DIR__, 2) . '/app/routes/web.php';
